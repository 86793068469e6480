// focaldet: parses the command line and hands over to one subcommand. Each subcommand lives
// in its own file in src/cli/ and registers itself with a register_*_command(app) function
// (see commands.h); its callback runs during parse.
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdlib>
#include <string>
#include <exception>
#include <iostream>

#include "cli/commands.h"
#include "common/error.h"
#include "common/malloc_settings.h"
#include "focaldet/version.h"

int main(int argc, char** argv) {
  focaldet::keep_freed_memory();  // the same activation buffers every step: no page faults
  // A write past the file-size limit (ulimit -f) raises SIGXFSZ, whose default action kills
  // the process with no word said; ignored, the write fails with EFBIG and the writer names the
  // file (the last checkpoint stays intact either way).
  std::signal(SIGXFSZ, SIG_IGN);
  // Results go to stdout; logs and errors to stderr, so `focaldet eval ... > report.txt` still
  // shows an error.
  spdlog::set_default_logger(spdlog::stderr_logger_mt("focaldet"));
  // A data-parallel worker other than rank 0 says which it is (docs/distributed.md).
  if (const char* rank = std::getenv("RANK"); rank != nullptr && *rank != '\0' &&
                                              std::string(rank) != "0") {
    spdlog::set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%n] [%l] rank " + std::string(rank) + ": %v");
  }
  CLI::App app{"focaldet: train and evaluate RetinaNet-style detectors, and compare focal loss "
               "with cross-entropy"};
  app.set_version_flag("--version", std::string("focaldet ") + focaldet::kVersion);
  app.require_subcommand(0, 1);
  focaldet::cli::register_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every usage error (a missing file, an unknown option) is
    // bad input, exit 2 as documented, not CLI11's own codes (105, 109, ...).
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const focaldet::cli::ExitStatus& status) {
    return status.code;
  } catch (const focaldet::Error& e) {
    spdlog::error("{}", e.what());  // bad input: the message names the file, line or key
    return 2;
  } catch (const std::exception& e) {
    // Training diverged, LibTorch (c10::Error), OpenCV, the standard library: a message, exit 1.
    spdlog::error("{}", e.what());
    return 1;
  }
  if (app.get_subcommands().empty()) std::cout << app.help();
  return 0;
}
