#!/usr/bin/env bash
# Times `focaldet eval` on the COCO-val-sized workload of scripts/make_big_eval.py
# (5,000 images, 35,297 boxes, 80 categories, 500,000 detections): best wall time of N runs,
# peak memory, and the 12 stats, checked against pycocotools' (from tests/eval/fixtures/README.md).
# Usage: scripts/bench_eval.sh [BUILD_DIR=build] [RUNS=3]
# Env: BENCH_DIR (default /tmp/focaldet-bench-eval).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
runs=${2:-3}
work=${BENCH_DIR:-/tmp/focaldet-bench-eval}
bin="$build/src/cli/focaldet"
[[ -x "$bin" ]] || { echo "no $bin: build it first (cmake --build $build --target focaldet)" >&2; exit 2; }
if [[ ! -f "$work/big_dets.json" ]]; then
  mkdir -p "$work"
  /usr/bin/python3 scripts/make_big_eval.py "$work" >/dev/null
fi

best=""
for ((i = 1; i <= runs; ++i)); do
  # stderr goes to a file (for the --timings line): show it when the run fails, or set -e
  # would end the script without saying why.
  if ! /usr/bin/time -f "%e %M" -o "$work/time.txt" \
    "$bin" eval --annotations "$work/big_gt.json" --detections "$work/big_dets.json" \
    --json "$work/metrics.json" --timings >"$work/stdout.txt" 2>"$work/stderr.txt"; then
    echo "run $i: focaldet eval failed:" >&2
    cat "$work/stderr.txt" "$work/time.txt" >&2
    exit 1
  fi
  read -r wall rss <"$work/time.txt"
  echo "run $i: ${wall} s, peak ${rss} KB; $(grep '^timings' "$work/stderr.txt" | cut -c10-)"
  if [[ -z "$best" ]] || awk "BEGIN{exit !($wall < $best)}"; then best=$wall; best_rss=$rss; fi
done
echo "best of $runs: ${best} s wall, peak ${best_rss} KB (pycocotools: 61.4 s; bar: 1.5 s)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"

# pycocotools' stats for this workload (tests/eval/fixtures/README.md), to 6 decimals.
/usr/bin/python3 - "$work/metrics.json" <<'PY'
import json, sys
want = [0.180102, 0.307925, 0.187921, 0.276361, 0.190132, 0.168269, 0.361262, 0.519042,
        0.519042, 0.51935, 0.518082, 0.519617]
names = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]
got = json.load(open(sys.argv[1]))
bad = [(n, got[n], w) for n, w in zip(names, want) if abs(got[n] - w) > 5e-7 + 1e-12]
print("stats:", " ".join(f"{n}={got[n]:.6f}" for n in names))
if bad:
    print("MISMATCH with pycocotools:", bad)
    sys.exit(1)
print("stats equal pycocotools' to 1e-6")
PY
