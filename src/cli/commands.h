#pragma once
// One register function per subcommand; each is defined in its own file in src/cli/.
namespace CLI {
class App;
}

namespace focaldet::cli {

// Adds every subcommand that exists in this build to `app`.
void register_commands(CLI::App& app);

// focaldet eval: COCO bbox evaluation (eval_command.cpp).
void register_eval_command(CLI::App& app);

// focaldet convert voc: Pascal VOC to COCO json (convert_command.cpp).
void register_convert_command(CLI::App& app);

}  // namespace focaldet::cli
