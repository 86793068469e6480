#!/usr/bin/env bash
# Installs every Debian package focaldet needs (idempotent: skips what is installed, runs
# `apt-get update` at most once), then configures and builds in build/ (Release, Ninja, ccache).
# Usage: scripts/setup.sh [--no-build] [extra cmake args...]
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  libtorch-dev libgloo-dev libopenblas0-pthread
  libdnnl-dev  # oneDNN's API (the library LibTorch links): the Winograd head for inference
  libopencv-dev libyaml-cpp-dev libspdlog-dev libfmt-dev libcli11-dev
  nlohmann-json3-dev libsimdjson-dev libtinyxml2-dev
  gnuplot-nox  # plots of `focaldet compare` and `analyze-loss` (optional: CSVs without it)
  libgtest-dev libgmock-dev libbenchmark-dev
  # test oracles only (never a runtime dependency)
  python3 python3-numpy python3-torch python3-torchvision
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all Debian packages present"
fi

# ccache keyed on paths relative to the checkout, so a fresh clone reuses earlier compilations.
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1

build=1
if [ "${1:-}" = "--no-build" ]; then build=0; shift; fi
if [ $build -eq 1 ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
  cmake --build build
fi
