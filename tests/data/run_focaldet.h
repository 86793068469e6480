#pragma once
// Runs the built focaldet binary (FOCALDET_BINARY, set by tests/data/CMakeLists.txt) for CLI
// tests: its exit status, and stdout+stderr in `output`.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace focaldet::test {

inline int run_focaldet(const std::string& args, std::string* output) {
  const std::string cmd = std::string(FOCALDET_BINARY) + " " + args + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) return -1;
  std::array<char, 512> buf{};
  while (fgets(buf.data(), buf.size(), pipe) != nullptr) *output += buf.data();
  const int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace focaldet::test
