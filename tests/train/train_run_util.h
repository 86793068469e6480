#pragma once
// Helpers of the end-to-end training tests (test_train_run.cpp, test_train_faults.cpp): run
// focaldet in the background, read metrics.jsonl, compare losses line for line.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace focaldet::test {
namespace fs = std::filesystem;

inline std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

inline std::string train_args(const std::string& run_dir, const std::string& extra = "") {
  return "train configs/smoke.yaml --run-dir " + run_dir + " --set data.val= " + extra;
}

// Starts focaldet with `args` (split on spaces) in the background; returns its pid.
inline pid_t spawn(const std::vector<std::string>& args, const std::string& env = "") {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (!env.empty()) ::putenv(const_cast<char*>(env.c_str()));
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(FOCALDET_BINARY));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, STDOUT_FILENO);
    ::dup2(devnull, STDERR_FILENO);
    ::execv(FOCALDET_BINARY, argv.data());
    ::_exit(127);
  }
  return pid;
}

inline int wait_status(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

inline std::vector<std::string> split_args(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char ch : s) {
    if (ch == ' ') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += ch;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

// Complete lines in a file that another process is appending to (0 when it is missing).
inline size_t count_lines(const std::string& path) {
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

// Waits until metrics.jsonl has at least `lines` lines (or the process ends), then SIGKILLs it.
inline void kill_after_lines(pid_t pid, const std::string& metrics, size_t lines) {
  for (int i = 0; i < 6000; ++i) {
    if (::waitpid(pid, nullptr, WNOHANG) == pid) return;
    if (count_lines(metrics) >= lines) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::kill(pid, SIGKILL);
  wait_status(pid);
}

inline void expect_same_losses(const std::vector<nlohmann::json>& got,
                        const std::vector<nlohmann::json>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i]["iter"], want[i]["iter"]);
    // Same seed, same single thread: the same arithmetic, so the same doubles.
    for (const char* key : {"loss", "loss_cls", "loss_box", "loss_cls_pos", "loss_cls_neg_easy",
                            "num_pos", "lr"}) {
      EXPECT_EQ(got[i][key].get<double>(), want[i][key].get<double>())
          << key << " at line " << i << " (iter " << got[i]["iter"] << ")";
    }
  }
}

inline bool has_temp_files(const std::string& dir) {
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.path().filename().string().find(".tmp") != std::string::npos) return true;
  }
  return false;
}


// Runs focaldet with `args` (split on spaces) to the end, with files it writes limited to
// `max_file_bytes` (RLIMIT_FSIZE, as `ulimit -f`: a stand-in for a full disk) and `env` (NAME=VALUE)
// added when not empty; returns the exit status (-1 when killed by a signal) with stdout and
// stderr in `output`.
inline int run_limited(const std::vector<std::string>& args, rlim_t max_file_bytes,
                       std::string* output, const std::string& env = "") {
  int fds[2];
  if (::pipe(fds) != 0) return -2;
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    if (!env.empty()) ::putenv(const_cast<char*>(env.c_str()));
    const rlimit limit{max_file_bytes, max_file_bytes};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(FOCALDET_BINARY));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::dup2(fds[1], STDOUT_FILENO);
    ::dup2(fds[1], STDERR_FILENO);
    ::execv(FOCALDET_BINARY, argv.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  char buf[512];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) output->append(buf, n);
  ::close(fds[0]);
  const int status = wait_status(pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace focaldet::test
