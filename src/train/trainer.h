#pragma once
// The training loop (DESIGN.md's train stage): a plain loop over batches with its extras, each
// a small step of its own: the LR schedule, gradient clipping, the loss logger, evaluation on
// the val split with the best checkpoint kept, periodic atomic checkpoints, and a clean stop on
// SIGINT / SIGTERM. A run directory holds config.yaml, metrics.jsonl, eval.jsonl, train.log,
// checkpoints/{last,best}.pt and detections_val.json.
#include <stdexcept>
#include <string>

#include "config/config.h"

namespace focaldet::train {

enum class TrainOutcome { Finished, Interrupted };

// A non-finite loss: names the iteration and the loss part; the last checkpoint is left as it
// was.
class TrainingDiverged : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct TrainArgs {
  std::string run_dir;     // where the run lives (new run: from run.output_dir / run.name)
  bool resume = false;     // continue the run in run_dir from checkpoints/last.pt
  bool overwrite = false;  // a new run may replace a run dir that already holds a run
};

// The run directory a new run of `config` gets: run.output_dir / (run.name or the config stem).
std::string default_run_dir(const config::Config& config);

// Trains `config` (for a resume, the run's own config.yaml) until its budget is spent or a
// signal asks to stop. Throws focaldet::Error for bad input, TrainingDiverged for a non-finite
// loss.
TrainOutcome train(const config::Config& config, const TrainArgs& args);

}  // namespace focaldet::train
