#pragma once
// Multi-process tests: a test in the parent process starts N ranks of this same test binary
// (dist::run_local_workers, the launcher under test elsewhere) with --gtest_filter naming one
// DistWorker.* test and FOCALDET_TEST_WORKER set; each rank runs that test and leaves a marker
// file when it passed, so that a filter matching nothing cannot pass. Outside a spawned rank,
// DistWorker.* tests skip.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "dist/launcher.h"
#include "support/temp_dir.h"

namespace focaldet::test {

inline bool is_rank_process() { return std::getenv("FOCALDET_TEST_WORKER") != nullptr; }

#define FOCALDET_ONLY_AS_RANK()                                      \
  do {                                                               \
    if (!::focaldet::test::is_rank_process()) {                      \
      GTEST_SKIP() << "runs only as a rank started by another test"; \
    }                                                                \
  } while (0)

inline std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::string(v) : fallback;
}

inline int this_rank() { return std::stoi(env_or("RANK", "0")); }

// Called at the end of a DistWorker test: marks this rank as having passed.
inline void mark_rank_passed() {
  if (::testing::Test::HasFailure()) return;
  std::ofstream(env_or("FOCALDET_TEST_OUT", ".") + "/rank" + std::to_string(this_rank()) + ".ok")
      << "ok\n";
}

struct RankRun {
  dist::LaunchResult result;
  std::vector<bool> passed;  // by rank: the rank's test ran to the end without a failure
  std::string describe() const {
    std::string s = "exit code " + std::to_string(result.exit_code);
    for (const dist::WorkerExit& w : result.workers) {
      s += "; rank " + std::to_string(w.rank) + " " + w.describe() +
           (passed[w.rank] ? " (passed)" : " (did not pass)");
    }
    return s;
  }
};

// Runs DistWorker.<worker_test> as `nproc` ranks; `env` adds variables for every rank.
inline RankRun run_ranks(const std::string& worker_test, int nproc,
                         std::vector<std::pair<std::string, std::string>> env = {},
                         dist::LaunchOptions options = {}) {
  TempDir out;
  env.emplace_back("FOCALDET_TEST_WORKER", "1");
  env.emplace_back("FOCALDET_TEST_OUT", out.str());
  options.env = env;
  options.quiet = true;
  options.kill_grace_seconds = 2;
  RankRun run;
  run.result = dist::run_local_workers(
      nproc, {"test_dist", "--gtest_filter=DistWorker." + worker_test, "--gtest_brief=1"}, options);
  for (int r = 0; r < nproc; ++r) {
    run.passed.push_back(std::filesystem::exists(out / ("rank" + std::to_string(r) + ".ok")));
  }
  return run;
}

}  // namespace focaldet::test
