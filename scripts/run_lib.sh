# Shared by the experiment scripts (source it; bash only).
# train_run CONFIG RUN_DIR ITERS [--set key=value ...]
#   Trains CONFIG for ITERS iterations into RUN_DIR, or finishes it: a run dir whose eval.jsonl
#   already holds iteration ITERS is left alone, one with a checkpoint is resumed (--resume keeps
#   the run's own config.yaml), anything else starts over. So a script stopped halfway
#   (Ctrl-C, a crash, the end of a session) picks up where it was when run again.
train_run() {
  local config=$1 run=$2 iters=$3
  shift 3
  if [ -f "$run/eval.jsonl" ] && grep -q "\"iter\":$iters," "$run/eval.jsonl"; then
    echo "== $run: done ($iters iterations), kept"
    return 0
  fi
  if [ -f "$run/checkpoints/last.pt" ]; then
    echo "== $run: resuming"
    "$FOCALDET" train --resume "$run"
  else
    echo "== $run: training $config for $iters iterations"
    "$FOCALDET" train "$config" --run-dir "$run" --overwrite \
      --set train.max_minutes=0 --set "train.max_iters=$iters" "$@"
  fi
}

# Builds focaldet when it is missing (a fresh clone) and sets FOCALDET.
need_focaldet() {
  FOCALDET=${FOCALDET:-build/src/cli/focaldet}
  if [ ! -x "$FOCALDET" ]; then scripts/setup.sh; fi
}

# keep_run RUN_DIR DEST: copies what a report is made from (config.yaml, metrics.jsonl,
# eval.jsonl, train.log; not the checkpoints) to DEST, so the committed report can be checked
# against, and remade from, the runs' own files.
keep_run() {
  local run=$1 dest=$2
  mkdir -p "$dest"
  for f in config.yaml metrics.jsonl eval.jsonl train.log; do
    if [ -f "$run/$f" ]; then cp "$run/$f" "$dest/$f"; fi
  done
}
