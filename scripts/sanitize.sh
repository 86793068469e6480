#!/usr/bin/env bash
# Builds test binaries with AddressSanitizer + UBSan (-DFOCALDET_SANITIZE=ON) in build-asan/
# and runs them; any sanitizer report fails the run (UBSan does not recover, ASan aborts).
# Usage: scripts/sanitize.sh [test targets...]   (default: test_data)
#        FOCALDET_SANITIZE_JOBS=2 scripts/sanitize.sh test_data test_loader
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build-asan
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(test_data)

cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFOCALDET_SANITIZE=ON \
  -DFOCALDET_BUILD_BENCH=OFF -DFOCALDET_NATIVE=OFF > build-asan/configure.log \
  || { cat build-asan/configure.log; exit 1; }
cmake --build build-asan --target "${targets[@]}" -j "${FOCALDET_SANITIZE_JOBS:-2}"

# LibTorch and OpenCV are not instrumented: leak checking would report their one-time
# allocations, so it is off; every other ASan/UBSan finding stops the test with an error.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
status=0
for t in "${targets[@]}"; do
  bin=$(find build-asan/tests -type f -name "$t" -perm -u+x | head -1)
  [ -n "$bin" ] || { echo "sanitize: no binary for $t"; status=1; continue; }
  echo "sanitize: running $bin"
  "$bin" --gtest_brief=1 || status=1
done
[ $status -eq 0 ] && echo "sanitize: clean (${targets[*]})"
exit $status
