#!/usr/bin/env bash
# The main job on the bundled dataset: sets up if needed (Debian packages, build), trains
# configs/bccd_focal.yaml (a 20-minute wall-clock budget on the CPU), prints the BCCD test
# split's COCO metrics, and draws the model's detections on a few test images.
# Usage: scripts/demo.sh [CONFIG] [--set key=value ...]
#   DEMO_MINUTES=5 scripts/demo.sh      a shorter training budget
set -euo pipefail
cd "$(dirname "$0")/.."
config=configs/bccd_focal.yaml
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then config=$1; shift; fi
extra=("$@")
[ -n "${DEMO_MINUTES:-}" ] && extra+=(--set "train.max_minutes=${DEMO_MINUTES}")

scripts/setup.sh
focaldet=build/src/cli/focaldet
run=runs/$(basename "$config" .yaml)
"$focaldet" train "$config" --run-dir "$run" --overwrite "${extra[@]}"

echo "== COCO metrics on the BCCD test split ($run/checkpoints/last.pt) =="
"$focaldet" eval "$config" --checkpoint "$run/checkpoints/last.pt" --split test "${extra[@]}"

images=()
for id in $(head -4 data/bccd/ImageSets/Main/test.txt); do images+=("data/bccd/JPEGImages/$id.jpg"); done
"$focaldet" predict "$config" --checkpoint "$run/checkpoints/last.pt" "${images[@]}" \
  --out "$run/predictions" "${extra[@]}"
echo "== drawn predictions: $run/predictions/*.jpg =="
