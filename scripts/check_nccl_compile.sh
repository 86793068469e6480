#!/usr/bin/env bash
# Compiles the NCCL side of distributed training (issue 11, acceptance 4) on a machine without a
# CUDA LibTorch: every translation unit of focaldet_dist (src/dist/*.cpp) as a -DFOCALDET_CUDA=ON
# build compiles it (FOCALDET_WITH_NCCL, and USE_C10D_NCCL as a CUDA LibTorch's targets define),
# and the trainer's CUDA-only branch (src/train/device.cpp with FOCALDET_WITH_CUDA: the CUDA
# caching allocator's peak memory), with -fsyntax-only: nothing is linked, since Debian's
# LibTorch has no libtorch_cuda. The rest of the device path (run.device) is device-generic
# and compiles in every build.
#
# What it needs: the c10d NCCL and c10/ATen CUDA headers (Debian's libtorch-dev installs them)
# and a CUDA toolkit's include folder with cuda_runtime.h and nccl.h ($CUDA_HOME/include,
# default /usr/local/cuda/include). Debian's LibTorch lacks the generated
# c10/cuda/impl/cuda_cmake_macros.h (it only defines C10_CUDA_BUILD_SHARED_LIBS, which matters on
# Windows alone), so C10_CUDA_NO_CMAKE_CONFIGURE_FILE skips it.
#
# The project's own flags and include paths come from BUILD_DIR/compile_commands.json (default
# build/; configured there first when missing). Fails when a unit does not compile, or when
# distributed.cpp's NCCL branch was not part of what was compiled.
# Usage: scripts/check_nccl_compile.sh [BUILD_DIR]      Env: CUDA_HOME, CXX_FLAGS_EXTRA
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${1:-build}
cuda_include=${CUDA_HOME:-/usr/local/cuda}/include

for header in cuda_runtime.h nccl.h; do
  [[ -f $cuda_include/$header ]] || {
    echo "check_nccl_compile: no $cuda_include/$header (set CUDA_HOME to a CUDA toolkit with NCCL)" >&2
    exit 2
  }
done
[[ -f /usr/include/torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp ]] || {
  echo "check_nccl_compile: LibTorch's c10d NCCL headers are missing (libtorch-dev)" >&2
  exit 2
}
if [[ ! -f $build/compile_commands.json ]]; then
  echo "check_nccl_compile: configuring $build for its compile_commands.json"
  CCACHE_BASEDIR=$root CCACHE_NOHASHDIR=1 cmake -S . -B "$build" -G Ninja \
    -DCMAKE_BUILD_TYPE=Release > /dev/null
fi

nccl_flags=(-DFOCALDET_WITH_NCCL -DFOCALDET_WITH_CUDA -DUSE_C10D_NCCL
            -DC10_CUDA_NO_CMAKE_CONFIGURE_FILE -I"$cuda_include")
# shellcheck disable=SC2206
extra=(${CXX_FLAGS_EXTRA:-})

# Each unit's command line as cmake wrote it, minus its output (-o X) and -c FILE, one argument
# a line (NUL-separated), then the unit's path.
commands=$(/usr/bin/python3 - "$build/compile_commands.json" "$root" <<'EOF'
import json, os, shlex, sys
entries = json.load(open(sys.argv[1]))
root = os.path.realpath(sys.argv[2])
wanted = sorted(os.path.join(root, "src/dist", f) for f in os.listdir(os.path.join(root, "src/dist"))
                if f.endswith(".cpp")) + [os.path.join(root, "src/train/device.cpp")]
by_file = {os.path.realpath(os.path.join(e["directory"], e["file"])): e for e in entries}
for path in wanted:
    e = by_file.get(path)
    if e is None:
        sys.exit(f"check_nccl_compile: {path} is not in {sys.argv[1]} (a stale build folder?)")
    args = e.get("arguments") or shlex.split(e["command"])
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
            continue
        if a in ("-o", "-c"):
            skip = True
            continue
        out.append(a)
    print(e["directory"] + "\x1f" + path + "\x1f" + "\x1e".join(out))
EOF
)

failed=0
count=0
while IFS=$'\x1f' read -r directory file argline; do
  IFS=$'\x1e' read -r -a args <<< "$argline"
  count=$((count + 1))
  start=$(date +%s)
  if (cd "$directory" && "${args[@]}" "${nccl_flags[@]}" "${extra[@]}" -fsyntax-only "$file"); then
    echo "ok    ${file#"$root"/} ($(( $(date +%s) - start )) s)"
  else
    echo "FAIL  ${file#"$root"/}"
    failed=$((failed + 1))
  fi
  # The CUDA branches must really be in what was compiled (not skipped by a missing define).
  branch=""
  case $file in
    */src/dist/distributed.cpp) branch="make_intrusive<c10d::ProcessGroupNCCL>" what="ProcessGroupNCCL" ;;
    */src/train/device.cpp) branch="allocator::getDeviceStats(device.index())" what="CUDA allocator" ;;
  esac
  if [[ -n $branch ]]; then
    if (cd "$directory" && "${args[@]}" "${nccl_flags[@]}" "${extra[@]}" -E "$file") |
        grep -F "$branch" > /dev/null; then
      echo "ok    ${file#"$root"/}: its $what branch was compiled"
    else
      echo "FAIL  ${file#"$root"/}: the $what branch was not compiled"
      failed=$((failed + 1))
    fi
  fi
done <<< "$commands"

if (( failed > 0 )); then
  echo "check_nccl_compile: $failed check(s) of $count unit(s) failed (flags: ${nccl_flags[*]})"
  exit 1
fi
echo "check_nccl_compile: all $count units (src/dist, src/train/device.cpp) compile with NCCL and CUDA (${nccl_flags[*]})"
