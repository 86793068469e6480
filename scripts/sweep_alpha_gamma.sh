#!/usr/bin/env bash
# A grid over the focal loss's alpha and gamma on BCCD (the focal loss paper's Table 1a/1b for
# this dataset): trains configs/bccd_focal with each pair at a short budget, one seed, and writes
# the AP table (rows gamma, columns alpha; gamma 0 is alpha-balanced cross-entropy) into OUT.
# Runs go to runs/sweep/; run again after a stop and finished runs are kept, cut ones resumed.
# Usage: scripts/sweep_alpha_gamma.sh
#   GAMMAS="0 0.5 1 2 5"   ALPHAS="0.25 0.5 0.75"
#   ITERS=120     iterations a run (about 4 minutes on 2 CPU cores)
#   WARMUP=30     warmup iterations
#   OUT=docs/results/bccd/sweep
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/run_lib.sh
GAMMAS=${GAMMAS:-0 0.5 1 2 5}
ALPHAS=${ALPHAS:-0.25 0.5 0.75}
ITERS=${ITERS:-120}
WARMUP=${WARMUP:-30}
OUT=${OUT:-docs/results/bccd/sweep}
RUNS=${RUNS:-runs/sweep}
need_focaldet

runs=()
for gamma in $GAMMAS; do
  for alpha in $ALPHAS; do
    run=$RUNS/gamma${gamma}_alpha$alpha
    runs+=("$run")
    train_run configs/bccd_focal.yaml "$run" "$ITERS" --set loss.cls=focal \
      --set "loss.gamma=$gamma" --set "loss.alpha=$alpha" --set "schedule.warmup_iters=$WARMUP"
  done
done

command="GAMMAS=\"$GAMMAS\" ALPHAS=\"$ALPHAS\" ITERS=$ITERS WARMUP=$WARMUP scripts/sweep_alpha_gamma.sh"
report_runs "$OUT" "$command" --title "Focal loss alpha x gamma sweep on BCCD" \
  --pivot loss.gamma,loss.alpha -- "${runs[@]}"
echo "== report: $OUT/README.md"
