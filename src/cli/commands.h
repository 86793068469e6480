#pragma once
// One register function per subcommand; each is defined in its own file in src/cli/.
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace focaldet::cli {

// Thrown by a subcommand to make focaldet exit with this status (130: interrupted by a signal).
struct ExitStatus {
  int code = 0;
};

// Adds every subcommand that exists in this build to `app`.
void register_commands(CLI::App& app);

// focaldet eval: COCO bbox evaluation (eval_command.cpp).
void register_eval_command(CLI::App& app);

// focaldet convert voc: Pascal VOC to COCO json (convert_command.cpp).
void register_convert_command(CLI::App& app);

// `focaldet eval CONFIG --checkpoint CKPT` (eval_checkpoint.cpp): the model on a split, the
// 12 COCO lines and AP per class on stdout, detections and metrics json written.
struct EvalCheckpointArgs {
  std::string config, checkpoint, split, out_dir, json_out;
  std::vector<std::string> overrides;
};
void run_eval_checkpoint(const EvalCheckpointArgs& args);

// Where a command that reads a checkpoint writes by default: the run dir the checkpoint lives
// in (run/checkpoints/x.pt -> run), or the checkpoint's own folder when it is not in a run dir.
std::string run_dir_of_checkpoint(const std::string& checkpoint);

// focaldet train (train_command.cpp).
void register_train_command(CLI::App& app);

// focaldet predict: draw detections on images (predict_command.cpp).
void register_predict_command(CLI::App& app);

// focaldet analyze-loss: how the loss is spread over samples, Fig. 4 of the focal loss paper
// (analyze_loss_command.cpp).
void register_analyze_loss_command(CLI::App& app);

// focaldet compare: the report comparing runs (compare_command.cpp).
void register_compare_command(CLI::App& app);

}  // namespace focaldet::cli
