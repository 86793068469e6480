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

# report_runs OUT COMMAND [compare options ...] -- RUN_DIR...
#   Copies what a report is made from (config.yaml, metrics.jsonl, eval.jsonl, train.log; not
#   the checkpoints) of each run to OUT/runs/, then writes the report into OUT from those copies
#   with focaldet compare, so the committed report can be checked against, and remade from, the
#   runs' own files. OUT/discussion.md (a person's reading), when present, goes on top.
report_runs() {
  local out=$1 command=$2
  shift 2
  local options=() kept=() run dest f
  while [ "$1" != "--" ]; do options+=("$1"); shift; done
  shift
  for run in "$@"; do
    dest=$out/runs/$(basename "$run")
    mkdir -p "$dest"
    for f in config.yaml metrics.jsonl eval.jsonl train.log; do
      if [ -f "$run/$f" ]; then cp "$run/$f" "$dest/$f"; fi
    done
    kept+=("$dest")
  done
  if [ -f "$out/discussion.md" ]; then options+=(--notes "$out/discussion.md"); fi
  "$FOCALDET" compare "${kept[@]}" --out "$out" --command "$command" "${options[@]}"
}
