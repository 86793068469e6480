#!/usr/bin/env bash
# Builds the tests with AddressSanitizer + UBSan (-DFOCALDET_SANITIZE=ON) in build-asan/ and runs
# them through CTest (the registered command, working directory and arguments); any sanitizer
# report fails its test (UBSan does not recover, ASan aborts). The focaldet binary that CLI tests
# run is built the same way and inherits the options below.
# Usage: scripts/sanitize.sh [test names...]   (default: every test registered with CTest)
#        FOCALDET_SANITIZE_JOBS=2 scripts/sanitize.sh test_data test_loader
# Env: FOCALDET_SANITIZE_JOBS (build jobs, default 2), FOCALDET_SANITIZE_TIMEOUT (seconds per
# test, default 3600: test_train takes ~3x its normal time under ASan).
# Prints one line per test (pass/fail and seconds) and exits non-zero if any failed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
mkdir -p build-asan

cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFOCALDET_SANITIZE=ON \
  -DFOCALDET_BUILD_BENCH=OFF -DFOCALDET_NATIVE=OFF > build-asan/configure.log \
  || { cat build-asan/configure.log; exit 1; }

# The tests CTest knows, as "name<TAB>target": a test registered by focaldet_add_test runs the
# executable target of its name (the GoogleTest binaries); a test driven by a script (cmake -P)
# runs the focaldet CLI. Named tests must be among them.
ninja -C build-asan -t targets all | sed -n 's/^\([^:/]*\): phony$/\1/p' > build-asan/targets.txt
mapfile -t selected < <(ctest --test-dir build-asan --show-only=json-v1 2>/dev/null |
  /usr/bin/python3 -c '
import json, sys
targets = set(open(sys.argv[1]).read().split())
wanted = sys.argv[2:]
tests = {t["name"]: t["name"] if t["name"] in targets else "focaldet"
         for t in json.load(sys.stdin)["tests"]}
unknown = [w for w in wanted if w not in tests]
if unknown:
    sys.exit("sanitize: no test named " + ", ".join(unknown) + "; CTest has: " + " ".join(sorted(tests)))
for name in wanted or sorted(tests):
    print(name + "\t" + tests[name])
' build-asan/targets.txt "$@")
[ ${#selected[@]} -gt 0 ] || { echo "sanitize: no tests selected" >&2; exit 1; }
names=() targets=()
for line in "${selected[@]}"; do
  names+=("${line%%$'\t'*}")
  targets+=("${line#*$'\t'}")
done
mapfile -t targets < <(printf '%s\n' "${targets[@]}" | sort -u)
echo "sanitize: building ${targets[*]}"
cmake --build build-asan --target "${targets[@]}" -j "${FOCALDET_SANITIZE_JOBS:-2}"

# LibTorch and OpenCV are not instrumented: leak checking would report their one-time
# allocations, so it is off; every other ASan/UBSan finding stops the test with an error.
# Suppressions (scripts/sanitize.supp, each line justified there) are for findings inside
# uninstrumented libraries only.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
if [ -f scripts/sanitize.supp ] && [[ "$ASAN_OPTIONS" != *suppressions=* ]]; then
  export ASAN_OPTIONS="$ASAN_OPTIONS:suppressions=$root/scripts/sanitize.supp"
fi
echo "sanitize: ASAN_OPTIONS=$ASAN_OPTIONS"
echo "sanitize: UBSAN_OPTIONS=$UBSAN_OPTIONS"

status=0
results=()
for name in "${names[@]}"; do
  echo "sanitize: running $name"
  start=$(date +%s%N)
  if ctest --test-dir build-asan -R "^${name}\$" --output-on-failure \
      --timeout "${FOCALDET_SANITIZE_TIMEOUT:-3600}"; then
    result=pass
  else
    result=FAIL
    status=1
  fi
  results+=("$(awk -v n="$name" -v r="$result" -v s="$start" -v e="$(date +%s%N)" \
    'BEGIN { printf "%-20s %-4s %8.1f s", n, r, (e - s) / 1e9 }')")
done
echo "sanitize: results (tree $(git describe --always --dirty 2>/dev/null || echo unknown))"
printf '  %s\n' "${results[@]}"
[ $status -eq 0 ] && echo "sanitize: clean (${names[*]})"
exit $status
