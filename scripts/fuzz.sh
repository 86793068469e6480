#!/usr/bin/env bash
# Runs a libFuzzer target (fuzz/, docs/reliability.md) under ASan + UBSan for SECONDS.
# Usage: scripts/fuzz.sh TARGET SECONDS       TARGET: coco ground_truth results voc config
#                                                     checkpoint, or all (each in turn)
#        nice -n 10 scripts/fuzz.sh coco 600
# Builds build-fuzz/ (clang-14, -DFOCALDET_FUZZ=ON) when needed. The run's folder is
# build-fuzz/fuzz-runs/TARGET/: corpus/ (the inputs it adds; the committed seeds in
# fuzz/corpus/TARGET/ are read, never written), crash-*/leak-*/timeout-*/oom-* (a finding's
# input), fuzz.log. Any sanitizer report, failed FUZZ_CHECK, exception other than
# focaldet::Error, timeout (30 s an input) or out-of-memory (2 GB) is a finding: the script
# names the input and exits 1. Environment: FOCALDET_FUZZ_RESUME=1 starts from the corpus
# of the previous run (default: from the seeds only); FOCALDET_FUZZ_JOBS (2) build jobs;
# CC/CXX (clang-14/clang++-14) for a fresh build-fuzz/; extra libFuzzer flags in FUZZ_FLAGS.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
targets_all=(coco ground_truth results voc config checkpoint)

usage() {
  echo "usage: scripts/fuzz.sh TARGET SECONDS   (TARGET: ${targets_all[*]} | all)" >&2
  exit 2
}
[ $# -eq 2 ] || usage
target=$1
seconds=$2
[[ "$seconds" =~ ^[0-9]+$ ]] && [ "$seconds" -gt 0 ] || usage
if [ "$target" = all ]; then
  targets=("${targets_all[@]}")
else
  case " ${targets_all[*]} " in *" $target "*) targets=("$target") ;; *) usage ;; esac
fi

dict_of() {
  case $1 in
    coco | ground_truth | results) echo json ;;
    voc) echo xml ;;
    config) echo yaml ;;
    checkpoint) echo checkpoint ;;
  esac
}

build=build-fuzz
if [ ! -f $build/build.ninja ]; then
  mkdir -p $build
  CC=${CC:-clang-14} CXX=${CXX:-clang++-14} cmake -S . -B $build -G Ninja \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFOCALDET_FUZZ=ON -DFOCALDET_BUILD_TESTS=OFF \
    -DFOCALDET_BUILD_BENCH=OFF -DFOCALDET_NATIVE=OFF > $build/configure.log \
    || { cat $build/configure.log; exit 1; }
fi
cmake --build $build -j "${FOCALDET_FUZZ_JOBS:-2}" --target "${targets[@]/#/fuzz_}"

# Leak checking stays on (per input and at exit), except for allocations made inside LibTorch
# (fuzz/lsan.supp: its zip reader leaks on some refused files). UBSan does not recover
# (-fno-sanitize-recover=undefined); ASan aborts at its first report.
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$root/fuzz/lsan.supp:print_suppressions=0}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:halt_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:abort_on_error=1}"

status=0
for t in "${targets[@]}"; do
  dir=$root/$build/fuzz-runs/$t
  seeds=$root/fuzz/corpus/$t
  [ -d "$seeds" ] && [ -n "$(ls -A "$seeds")" ] || { echo "fuzz: no seed corpus $seeds" >&2; exit 1; }
  if [ "${FOCALDET_FUZZ_RESUME:-0}" != 1 ]; then rm -rf "$dir"; fi
  mkdir -p "$dir/corpus"
  rm -f "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* "$dir"/oom-* "$dir"/slow-unit-*
  # The targets' scratch files (fuzz/fuzz_util.h): removed afterwards, also after a crash.
  scratch=$(mktemp -d "$( [ -d /dev/shm ] && echo /dev/shm || echo "${TMPDIR:-/tmp}")/focaldet_fuzz.XXXXXX")
  echo "fuzz: $t for ${seconds}s (seeds: $seeds, new inputs: $dir/corpus, log: $dir/fuzz.log)"
  rc=0
  (cd "$dir" && FOCALDET_FUZZ_SCRATCH=$scratch "$root/$build/fuzz/fuzz_$t" \
     -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
     -dict="$root/fuzz/dict/$(dict_of "$t").dict" -artifact_prefix="$dir/" ${FUZZ_FLAGS:-} \
     "$dir/corpus" "$seeds") > "$dir/fuzz.log" 2>&1 || rc=$?
  rm -rf "$scratch"
  findings=$(ls "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* "$dir"/oom-* 2>/dev/null || true)
  last=$(grep -E '^#[0-9]+' "$dir/fuzz.log" | tail -1 || true)
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/fuzz.log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/fuzz.log")
  echo "fuzz: $t: last status: $last"
  echo "fuzz: $t: runs: ${runs:-?}, exec/s: ${rate:-?}, corpus: $(ls "$dir/corpus" | wc -l) new + $(ls "$seeds" | wc -l) seed files"
  if [ $rc -ne 0 ] || [ -n "$findings" ]; then
    status=1
    echo "fuzz: $t: FINDING (libFuzzer exit $rc); the end of $dir/fuzz.log:"
    grep -v '^    #[0-9]' "$dir/fuzz.log" | tail -25
    for f in $findings; do
      echo "fuzz: $t: input: $f"
      echo "fuzz: $t: reproduce: $build/fuzz/fuzz_$t $f"
    done
  else
    echo "fuzz: $t: no finding in ${seconds}s"
  fi
done
exit $status
