// `focaldet train CONFIG [--set key=value ...]`, `focaldet train --resume RUN_DIR`, and
// `focaldet train --nproc N ...` (N data-parallel workers on this machine, docs/distributed.md).
#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "common/error.h"
#include "config/config_io.h"
#include "dist/dist_env.h"
#include "dist/launcher.h"
#include "train/trainer.h"

namespace focaldet::cli {
namespace {

struct TrainCommandArgs {
  std::string config;
  std::vector<std::string> overrides;
  std::string resume;
  std::string run_dir;
  bool overwrite = false;
  int nproc = 0;
};

// config.yaml in a run dir is read back on resume from any folder: its paths are absolute.
config::Config with_absolute_paths(config::Config c) {
  for (std::string* p : {&c.data.image_root, &c.data.train, &c.data.val, &c.data.test,
                         &c.model.weights, &c.run.output_dir}) {
    if (!p->empty()) *p = std::filesystem::absolute(*p).lexically_normal().string();
  }
  return c;
}

// This process's command line, as /proc/self/cmdline holds it.
std::vector<std::string> own_command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> argv;
  for (size_t at = 0; at < all.size();) {
    const size_t end = all.find('\0', at);
    argv.push_back(all.substr(at, end - at));
    at = end == std::string::npos ? all.size() : end + 1;
  }
  return argv;
}

// --nproc N (or run.nproc): the same command without --nproc, run by N workers
// (dist/launcher.h).
int launch_workers(int nproc, const config::Config& c) {
  check(!dist::read_dist_env().distributed(),
        "train: --nproc starts its own workers; it cannot run inside a distributed launch "
        "(RANK / WORLD_SIZE are set)");
  std::vector<std::string> argv;
  const std::vector<std::string> own = own_command_line();
  for (size_t i = 0; i < own.size(); ++i) {
    if (own[i] == "--nproc") {
      ++i;  // and its value
    } else if (own[i].rfind("--nproc=", 0) != 0) {
      argv.push_back(own[i]);
    }
  }
  dist::LaunchOptions options;
  // The workers notice a dead peer themselves within the collective timeout.
  options.failure_timeout_seconds = c.dist.timeout_seconds + 30;
  return dist::launch_local_workers(nproc, argv, options);
}

void run_train(const TrainCommandArgs& args) {
  train::TrainArgs t;
  config::Config c;
  check(args.nproc >= 0, "train: --nproc must be >= 1");
  check(args.config.empty() || args.resume.empty(),
        "train: give either CONFIG or --resume RUN_DIR, not both");
  // Workers: --nproc, else run.nproc, unless a launcher (torchrun, srun, or --nproc itself)
  // already started this process as one of them.
  const bool has_config = !args.config.empty() || !args.resume.empty();
  if (args.nproc > 1 || (args.nproc == 0 && has_config && !dist::read_dist_env().distributed())) {
    // Read (and check) the config once here, so that a bad one is reported once, not N times.
    c = args.resume.empty() ? config::load_config(args.config, args.overrides)
                            : config::load_config(args.resume + "/config.yaml", args.overrides);
    const int nproc = args.nproc > 0 ? args.nproc : c.run.nproc;
    if (nproc > 1) throw ExitStatus{launch_workers(nproc, c)};
  }
  // torchrun --max_restarts starts the same command again after a worker failed: a run that
  // has a checkpoint goes on from it.
  std::string restarted_run;
  if (args.resume.empty() && !args.config.empty() && dist::read_dist_env().restart_count > 0) {
    const config::Config first = config::load_config(args.config, args.overrides);
    const std::string dir = args.run_dir.empty() ? train::default_run_dir(first) : args.run_dir;
    if (std::filesystem::exists(dir + "/checkpoints/last.pt")) restarted_run = dir;
  }
  if (!restarted_run.empty()) {
    t.resume = true;
    t.run_dir = restarted_run;
    c = config::load_config(restarted_run + "/config.yaml", args.overrides);
  } else if (!args.resume.empty()) {
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
  cmd->add_option("--nproc", args->nproc,
                  "train with N data-parallel worker processes on this machine (Gloo over "
                  "loopback; train.batch_size is per worker; default: run.nproc)");
  cmd->callback([args] { run_train(*args); });
}

}  // namespace focaldet::cli
