#include "train/console.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>

#include "common/error.h"

namespace focaldet::train {

Console::Console(const std::string& log_path, const std::string& progress, int rank) {
  auto err_sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  if (rank > 0) {
    quiet_ = true;
    both_ = std::make_shared<spdlog::logger>("train", err_sink);
    file_ = std::make_shared<spdlog::logger>("train_file", spdlog::sinks_init_list{});
    both_->set_pattern("[%Y-%m-%d %H:%M:%S] rank " + std::to_string(rank) + ": %v");
    return;
  }
  live_ = progress == "on" || (progress == "auto" && ::isatty(STDERR_FILENO) == 1);
  std::shared_ptr<spdlog::sinks::basic_file_sink_mt> file_sink;
  try {
    file_sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(log_path, /*truncate=*/false);
  } catch (const spdlog::spdlog_ex& e) {
    throw Error(log_path + ": cannot open the training log: " + e.what());
  }
  both_ = std::make_shared<spdlog::logger>("train", spdlog::sinks_init_list{err_sink, file_sink});
  file_ = std::make_shared<spdlog::logger>("train_file", file_sink);
  for (auto* l : {both_.get(), file_.get()}) {
    l->set_pattern("[%Y-%m-%d %H:%M:%S] %v");
    l->flush_on(spdlog::level::info);
  }
}

Console::~Console() { clear_status(); }

void Console::clear_status() {
  if (status_shown_) {
    std::fputs("\r\033[K", stderr);
    std::fflush(stderr);
    status_shown_ = false;
  }
}

void Console::info(const std::string& message) {
  if (quiet_) return;
  clear_status();
  both_->info(message);
}

void Console::warn(const std::string& message) {
  clear_status();
  both_->warn(message);
}

void Console::error(const std::string& message) {
  clear_status();
  both_->error(message);
}

void Console::log_only(const std::string& message) { file_->error(message); }

void Console::step(const std::string& line) {
  if (quiet_) return;
  if (live_) {
    file_->info(line);
  } else {
    both_->info(line);
  }
}

void Console::status(const std::string& line) {
  if (!live_) return;
  std::fprintf(stderr, "\r\033[K%s", line.c_str());
  std::fflush(stderr);
  status_shown_ = true;
}

}  // namespace focaldet::train
