#pragma once
// What training prints: messages to stderr and train.log, the log-step lines, and on a terminal
// one live progress line redrawn in place (plain lines instead when stderr is not a terminal,
// so logs piped to a file stay readable).
#include <memory>
#include <string>

namespace spdlog {
class logger;
}

namespace focaldet::train {

class Console {
 public:
  // log_path: train.log (appended to). progress: "auto" (live line when stderr is a terminal),
  // "on" or "off". A data-parallel rank other than 0 (rank > 0) writes no log file and prints
  // only its warnings and errors, each line prefixed with "rank N: ".
  Console(const std::string& log_path, const std::string& progress, int rank = 0);
  ~Console();
  void info(const std::string& message);
  void warn(const std::string& message);
  void error(const std::string& message);
  // A log-step line: always into train.log; on stderr too unless the live line shows it.
  void step(const std::string& line);
  // Into train.log only (for a message main() prints on stderr itself).
  void log_only(const std::string& message);
  // Redraws the live line (no-op without one).
  void status(const std::string& line);
  bool live() const { return live_; }

 private:
  void clear_status();
  bool quiet_ = false;  // a rank > 0
  bool live_ = false;
  bool status_shown_ = false;
  std::shared_ptr<spdlog::logger> both_, file_;
};

}  // namespace focaldet::train
