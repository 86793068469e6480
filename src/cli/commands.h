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

// focaldet train (train_command.cpp).
void register_train_command(CLI::App& app);

// focaldet predict: draw detections on images (predict_command.cpp).
void register_predict_command(CLI::App& app);

}  // namespace focaldet::cli
