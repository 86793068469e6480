#!/usr/bin/env bash
# Crash-safety soak: trains configs/smoke.yaml while SIGKILLing it at KILLS random moments (during
# start-up, steps, log writes, checkpoint writes: wherever the kill lands), resuming after each
# kill, then checks that metrics.jsonl equals an uninterrupted run's line for line (every field
# but the timings) and that no temp file is left in the run dir.
# Usage: scripts/soak.sh [KILLS]      KILLS=20 by default
#   ITERS=120   iterations of the smoke run (more kills need more)
#   SEED=1      seeds bash's RANDOM: the same kill moments again
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/run_lib.sh
need_focaldet
KILLS=${1:-20}
ITERS=${ITERS:-120}
RANDOM=${SEED:-1}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
args=(--set data.val= --set "train.max_iters=$ITERS" --set train.log_every=1
      --set train.checkpoint_every=3)

start=$(date +%s%N)
"$FOCALDET" train configs/smoke.yaml --run-dir "$tmp/reference" "${args[@]}" 2>/dev/null
ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "== uninterrupted run: $ITERS iterations in ${ms} ms"

# Kill after a random delay of up to twice an even share of the run: the kills spread over the
# whole run, and start-up (no checkpoint yet) is hit as often as the rest.
max_delay=$(( 2 * ms / KILLS + 1 ))
run=$tmp/killed
kills=0
while [ "$kills" -lt "$KILLS" ]; do
  if [ -f "$run/checkpoints/last.pt" ]; then
    "$FOCALDET" train --resume "$run" 2>/dev/null &
  else
    "$FOCALDET" train configs/smoke.yaml --run-dir "$run" --overwrite "${args[@]}" 2>/dev/null &
  fi
  pid=$!
  delay=$(( (RANDOM * 32768 + RANDOM) % max_delay ))
  sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
  if ! kill -9 "$pid" 2>/dev/null; then
    wait "$pid" || true
    echo "soak: the run finished after $kills kills, before $KILLS; raise ITERS" >&2
    exit 1
  fi
  wait "$pid" 2>/dev/null || true
  kills=$((kills + 1))
  last=$(tail -n 1 "$run/metrics.jsonl" 2>/dev/null | grep -o '"iter":[0-9]*' || echo none)
  echo "kill $kills after ${delay} ms (last logged: ${last})"
done
"$FOCALDET" train --resume "$run" 2>/dev/null

/usr/bin/python3 - "$tmp/reference/metrics.jsonl" "$run/metrics.jsonl" <<'PY'
import json, sys
timing = {"time", "img_per_s", "data_time", "peak_mem_mb"}
want, got = ([json.loads(l) for l in open(p)] for p in sys.argv[1:3])
strip = lambda rows: [{k: v for k, v in r.items() if k not in timing} for r in rows]
if strip(want) != strip(got):
    for i, (a, b) in enumerate(zip(strip(want), strip(got))):
        if a != b:
            sys.exit(f"soak: metrics.jsonl differs at line {i + 1}: {a} != {b}")
    sys.exit(f"soak: metrics.jsonl has {len(got)} lines, the uninterrupted run {len(want)}")
print(f"== metrics.jsonl: {len(got)} lines, equal to the uninterrupted run's (timings aside)")
PY
left=$(find "$run" -name '.*.tmp.*' | wc -l)
if [ "$left" -ne 0 ]; then echo "soak: $left temp files left in the run dir" >&2; exit 1; fi
echo "== $KILLS kills, resumed each time: no temp file left"
