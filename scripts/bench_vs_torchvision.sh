#!/bin/bash
# Issue 12: focaldet against torchvision 0.14 (Debian's python3-torchvision, the same LibTorch
# 1.13 kernels) on this machine, side by side in one run, equal thread counts.
#
#   scripts/bench_vs_torchvision.sh [BUILD_DIR]       # default: build
#   needs BUILD_DIR/src/cli/focaldet and BUILD_DIR/bench/focaldet_infer_bench:
#     ninja -C BUILD_DIR focaldet focaldet_infer_bench
#
# (a) Training: scripts/bench_train.py's workload (R50-FPN as torchvision's
#     retinanet_resnet50_fpn trains from pretrained weights, random init, BCCD at a 512 px short
#     side, batch 2, SGD), `focaldet train configs/bench_r50_512.yaml` against torchvision's
#     training step; median img/s of the timed steps after TRAIN_WARM warm-up steps.
# (b) Inference: retinanet_resnet50_fpn (91 classes, FrozenBatchNorm as with pretrained weights,
#     eval mode, detections_per_img 300) with the same weights on both sides (seeded random
#     weights made to give real detections: scripts/bench_infer.py weights), one BCCD image,
#     batch 1, at its own 640x480 and at a 512 px short side (683x512); timed from the decoded
#     image to detections in original pixels (resize, normalise, pad, backbone, FPN, head,
#     anchors, post-processing): focaldet_infer_bench against torchvision's model([image]).
#     Median img/s of INFER_REPS runs after INFER_WARM warm-up runs. The detections at 640x480
#     (no resize, so both sides see the same pixels) are compared: count, labels, scores and
#     boxes of the top 10.
#
# Environment: THREADS (2), TRAIN_WARM (1), TRAIN_TIMED (3), INFER_WARM (1), INFER_REPS (3),
# SKIP_TRAIN=1 (inference only; train_ratio is then "skipped"), IMAGE (a BCCD test image),
# PROFILE=N (print torchvision's N costliest ops and focaldet's stage times at 640x480).
# The defaults take ~3 minutes on a quiet 2-core machine; a loaded machine slows both sides
# unevenly, so compare only figures from one run, and give the load (printed first and last).
# The last two lines are `train_ratio=X` and `infer_ratio=Y` (focaldet img/s over
# torchvision's; Y at 640x480), the line before them `infer_ratio_512=Z`.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
FOCALDET=$BUILD/src/cli/focaldet
INFER=$BUILD/bench/focaldet_infer_bench
PY=/usr/bin/python3
THREADS=${THREADS:-2}
TRAIN_WARM=${TRAIN_WARM:-1}
TRAIN_TIMED=${TRAIN_TIMED:-3}
INFER_WARM=${INFER_WARM:-1}
INFER_REPS=${INFER_REPS:-3}
IMAGE=${IMAGE:-$ROOT/data/bccd/JPEGImages/BloodImage_00007.jpg}
PROFILE=${PROFILE:-0}
for f in "$FOCALDET" "$INFER"; do
  [ -x "$f" ] || { echo "no $f: ninja -C $BUILD focaldet focaldet_infer_bench" >&2; exit 2; }
done
if [ "$THREADS" != 2 ] && [ "${SKIP_TRAIN:-0}" != 1 ]; then
  echo "THREADS=$THREADS: configs/bench_r50_512.yaml trains with run.threads 2" >&2; exit 2
fi
WORK=$(mktemp -d /tmp/focaldet-vs-tv.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

field() { sed -n "s/^$1=//p" | tail -1; }
ratio() { "$PY" -c "import sys; print('%.3f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$1" "$2"; }

echo "machine: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)   threads: $THREADS"
echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)"

# (a) training
if [ "${SKIP_TRAIN:-0}" = 1 ]; then
  train_ratio=skipped
else
  echo "== training: R50-FPN, BCCD 512 px, batch 2, $TRAIN_WARM warm-up + $TRAIN_TIMED timed steps per side"
  "$PY" "$ROOT/scripts/bench_infer.py" train --focaldet "$FOCALDET" --warm "$TRAIN_WARM" \
      --timed "$TRAIN_TIMED" --threads "$THREADS" | tee "$WORK/train.txt"
  ours=$(field train_focaldet_img_per_s < "$WORK/train.txt")
  theirs=$(field train_torchvision_img_per_s < "$WORK/train.txt")
  train_ratio=$(ratio "$ours" "$theirs")
  echo "train img/s (median step): focaldet $ours, torchvision $theirs"
  echo "train peak RSS (MB): focaldet $(field train_focaldet_peak_rss_mb < "$WORK/train.txt"), torchvision $(field train_torchvision_peak_rss_mb < "$WORK/train.txt")"
fi

# (b) inference
echo "== inference: retinanet_resnet50_fpn, 91 classes, batch 1, $INFER_WARM warm-up + $INFER_REPS timed runs per side"
"$PY" "$ROOT/scripts/bench_infer.py" weights "$WORK/weights.pt" "$IMAGE"
declare -A infer_ratio
for size in 480:640 512:683; do
  short=${size%:*} max=${size#*:}
  extra_cpp=() extra_py=()
  if [ "$short" = 480 ] && [ "$PROFILE" != 0 ]; then
    extra_cpp=(--stages) extra_py=(--profile "$PROFILE")
  fi
  echo "-- shorter side $short (max $max): focaldet"
  "$INFER" --weights "$WORK/weights.pt" --image "$IMAGE" --shorter-side "$short" \
      --max-size "$max" --threads "$THREADS" --warm "$INFER_WARM" --reps "$INFER_REPS" \
      --dets "$WORK/focaldet_$short.txt" "${extra_cpp[@]}" | tee "$WORK/focaldet_$short.log"
  echo "-- shorter side $short (max $max): torchvision"
  "$PY" "$ROOT/scripts/bench_infer.py" infer --weights "$WORK/weights.pt" --image "$IMAGE" \
      --min-size "$short" --max-size "$max" --threads "$THREADS" --warm "$INFER_WARM" \
      --reps "$INFER_REPS" --dets "$WORK/torchvision_$short.txt" "${extra_py[@]}" \
      | tee "$WORK/torchvision_$short.log"
  ours=$(field median_img_per_s < "$WORK/focaldet_$short.log")
  theirs=$(field median_img_per_s < "$WORK/torchvision_$short.log")
  infer_ratio[$short]=$(ratio "$ours" "$theirs")
  echo "infer img/s at shorter side $short: focaldet $ours, torchvision $theirs"
done
echo "== detections at 640x480 (same pixels on both sides)"
"$PY" "$ROOT/scripts/bench_infer.py" compare "$WORK/focaldet_480.txt" "$WORK/torchvision_480.txt" \
  || echo "WARNING: detections differ beyond tolerance"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "infer_ratio_512=${infer_ratio[512]}"
echo "train_ratio=$train_ratio"
echo "infer_ratio=${infer_ratio[480]}"
