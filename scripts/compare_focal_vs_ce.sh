#!/usr/bin/env bash
# The focal loss vs cross-entropy experiment on BCCD: trains configs/bccd_focal, bccd_ce,
# bccd_alpha_ce and bccd_ohem at the same iteration budget with several seeds each, then writes
# the comparison report (focaldet compare) and the loss-distribution analysis of the focal and
# the cross-entropy model (focaldet analyze-loss, the paper's Figure 4) into OUT, with the runs'
# configs and logs (OUT/runs/) and, if present, a person's reading of them (OUT/discussion.md,
# placed at the top of the report).
# Runs go to runs/compare/; run again after a stop and finished runs are kept, cut ones resumed.
# Usage: scripts/compare_focal_vs_ce.sh
#   ITERS=240     iterations a run (240 of batch 8 took about 8 minutes on 2 CPU cores; the
#                 configs train batch 4 since issue 12, so 240 iterations are half the images)
#   SEEDS=3       seeds per config (run.seed = 0 .. SEEDS-1)
#   WARMUP=40     warmup iterations (the configs' 100 are sized for 20-minute runs)
#   EVALS=6       evaluations on the val split a run (the AP curve's points)
#   OUT=docs/results/bccd
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/run_lib.sh
ITERS=${ITERS:-240}
SEEDS=${SEEDS:-3}
WARMUP=${WARMUP:-40}
EVALS=${EVALS:-6}
OUT=${OUT:-docs/results/bccd}
RUNS=${RUNS:-runs/compare}
need_focaldet

configs=(bccd_focal bccd_ce bccd_alpha_ce bccd_ohem)
runs=()
for seed in $(seq 0 $((SEEDS - 1))); do
  for name in "${configs[@]}"; do
    run=$RUNS/${name}_s$seed
    runs+=("$run")
    train_run "configs/$name.yaml" "$run" "$ITERS" --set "run.seed=$seed" \
      --set "schedule.warmup_iters=$WARMUP" --set "train.eval_every=$((ITERS / EVALS))" \
      --set "train.checkpoint_every=$((ITERS / EVALS))"
  done
done

command="ITERS=$ITERS SEEDS=$SEEDS WARMUP=$WARMUP EVALS=$EVALS scripts/compare_focal_vs_ce.sh"
report_runs "$OUT" "$command" --title "Focal loss vs cross-entropy on BCCD" -- "${runs[@]}"
for name in bccd_focal bccd_ce; do
  "$FOCALDET" analyze-loss "$RUNS/${name}_s0/config.yaml" \
    --checkpoint "$RUNS/${name}_s0/checkpoints/last.pt" --split val --out "$OUT/analyze_$name"
done
echo "== report: $OUT/README.md"
