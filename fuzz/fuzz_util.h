#pragma once
// What every fuzz target shares: a scratch folder (the only place a target writes), a quiet
// logger, and FUZZ_CHECK for the readers' documented guarantees. A reader that throws
// focaldet::Error for bad input does its job; anything else that escapes (another exception, a
// broken guarantee, a sanitizer report) is a finding and aborts, so libFuzzer saves the input.
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "common/error.h"

namespace focaldet::fuzz {

namespace fs = std::filesystem;

// Aborts with the message: libFuzzer reports it as a crash and writes the input out.
#define FUZZ_CHECK(cond, message)                                                             \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      std::fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %s: %s\n", __FILE__, __LINE__, #cond, \
                   std::string(message).c_str());                                             \
      std::abort();                                                                           \
    }                                                                                         \
  } while (0)

// The process's scratch folder, SCRATCH/focaldet_fuzz_PID, where SCRATCH is
// $FOCALDET_FUZZ_SCRATCH (scripts/fuzz.sh sets it and removes it afterwards, also after a
// crash), else /dev/shm when there is one (the atomic writes fsync, which costs nothing on
// tmpfs), else the system temp folder. libFuzzer ends the process with _Exit, so no exit handler
// runs: each start removes the folders of earlier runs whose process is gone instead.
inline const fs::path& scratch_dir() {
  static const fs::path dir = [] {
    std::error_code ec;
    const char* env = std::getenv("FOCALDET_FUZZ_SCRATCH");
    fs::path base = env != nullptr && *env != '\0'     ? fs::path(env)
                    : fs::is_directory("/dev/shm", ec) ? fs::path("/dev/shm")
                                                       : fs::temp_directory_path();
    const std::string prefix = "focaldet_fuzz_";
    for (const fs::directory_entry& e : fs::directory_iterator(base, ec)) {
      const std::string name = e.path().filename().string();
      if (name.rfind(prefix, 0) != 0 || name.size() == prefix.size() ||
          name.find_first_not_of("0123456789", prefix.size()) != std::string::npos) {
        continue;
      }
      const long pid = std::strtol(name.c_str() + prefix.size(), nullptr, 10);
      if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
        std::error_code ignored;
        fs::remove_all(e.path(), ignored);
      }
    }
    fs::path d = base / (prefix + std::to_string(::getpid()));
    fs::remove_all(d, ec);
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

inline void write_bytes(const fs::path& path, std::string_view bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  FUZZ_CHECK(out.good(), "cannot write the scratch file " + path.string());
}

// The readers' warnings (dropped boxes, ...) would flood the fuzzer's output.
inline void quiet_logging() { spdlog::set_level(spdlog::level::off); }

// Runs `body`; focaldet::Error is the readers' answer to bad input and is fine. Returns whether
// the body completed. Any other exception is a finding: the readers promise focaldet::Error
// (exit code 2, a message naming the file) for bad input, and main() would report anything
// else as an internal error (exit 1).
template <class Body>
bool run_reader(const char* what, Body&& body) {
  try {
    body();
    return true;
  } catch (const Error&) {
    return false;
  } catch (const std::exception& e) {
    FUZZ_CHECK(false, std::string(what) + " threw a non-focaldet exception: " + e.what());
  }
  return false;
}

}  // namespace focaldet::fuzz
