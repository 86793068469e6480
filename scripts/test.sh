#!/usr/bin/env bash
# Sets up (Debian packages, configure, build) and runs every test with CTest.
# Usage: scripts/test.sh [ctest args...]   e.g. scripts/test.sh -R loss
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# Tests pick their own thread counts; 2 ctest jobs match the 2-core machines we target.
ctest --test-dir build --output-on-failure -j "${FOCALDET_TEST_JOBS:-2}" "$@"
