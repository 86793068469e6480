// `focaldet train CONFIG [--set key=value ...]` and `focaldet train --resume RUN_DIR`.
#include <CLI/CLI.hpp>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "common/error.h"
#include "config/config_io.h"
#include "train/trainer.h"

namespace focaldet::cli {
namespace {

struct TrainCommandArgs {
  std::string config;
  std::vector<std::string> overrides;
  std::string resume;
  std::string run_dir;
  bool overwrite = false;
};

// config.yaml in a run dir is read back on resume from any folder: its paths are absolute.
config::Config with_absolute_paths(config::Config c) {
  for (std::string* p : {&c.data.image_root, &c.data.train, &c.data.val, &c.data.test,
                         &c.model.weights, &c.run.output_dir}) {
    if (!p->empty()) *p = std::filesystem::absolute(*p).lexically_normal().string();
  }
  return c;
}

void run_train(const TrainCommandArgs& args) {
  train::TrainArgs t;
  config::Config c;
  if (!args.resume.empty()) {
    check(args.config.empty(), "train: give either CONFIG or --resume RUN_DIR, not both");
    t.resume = true;
    t.run_dir = args.resume;
    c = config::load_config(args.resume + "/config.yaml", args.overrides);
  } else {
    check(!args.config.empty(), "train: a CONFIG file (or --resume RUN_DIR) is required");
    c = config::load_config(args.config, args.overrides);
    t.run_dir = args.run_dir.empty() ? train::default_run_dir(c) : args.run_dir;
    t.overwrite = args.overwrite;
    c = with_absolute_paths(c);
  }
  if (train::train(c, t) == train::TrainOutcome::Interrupted) throw ExitStatus{130};
}

}  // namespace

void register_train_command(CLI::App& app) {
  auto args = std::make_shared<TrainCommandArgs>();
  CLI::App* cmd = app.add_subcommand(
      "train", "Train a detector from a YAML config (run dir: config.yaml, metrics.jsonl, "
               "eval.jsonl, checkpoints/, train.log)");
  cmd->add_option("CONFIG", args->config, "YAML config (see configs/)");
  cmd->add_option("--set", args->overrides, "override a key: --set loss.gamma=0 (repeatable)");
  cmd->add_option("--resume", args->resume,
                  "continue the run in RUN_DIR from its last checkpoint");
  cmd->add_option("--run-dir", args->run_dir,
                  "run directory (default: run.output_dir/run.name, or the config's name)");
  cmd->add_flag("--overwrite", args->overwrite, "start over in a run dir that holds a run");
  cmd->callback([args] { run_train(*args); });
}

}  // namespace focaldet::cli
