// focaldet: parses the command line and hands over to one subcommand. Each subcommand lives
// in its own file in src/cli/ and registers itself with a register_*_command(app) function
// (see commands.h); its callback runs during parse.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <exception>
#include <iostream>

#include "cli/commands.h"
#include "common/error.h"
#include "focaldet/version.h"

int main(int argc, char** argv) {
  CLI::App app{"focaldet: train and evaluate RetinaNet-style detectors, and compare focal loss "
               "with cross-entropy"};
  app.set_version_flag("--version", std::string("focaldet ") + focaldet::kVersion);
  app.require_subcommand(0, 1);
  focaldet::cli::register_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const focaldet::Error& e) {
    spdlog::error("{}", e.what());
    return 2;
  } catch (const std::exception& e) {
    // LibTorch (c10::Error), OpenCV and the standard library: still a message, never a crash.
    spdlog::error("{}", e.what());
    return 2;
  }
  if (app.get_subcommands().empty()) std::cout << app.help();
  return 0;
}
