#include "cli/commands.h"

#include <CLI/CLI.hpp>

namespace focaldet::cli {

// Subcommands arrive with the issues that build them (train, eval, convert, compare, ...).
void register_commands(CLI::App& app) {
  register_train_command(app);
  register_eval_command(app);
  register_predict_command(app);
  register_analyze_loss_command(app);
  register_convert_command(app);
  register_compare_command(app);
}

}  // namespace focaldet::cli
