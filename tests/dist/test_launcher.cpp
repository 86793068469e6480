// launch_local_workers / run_local_workers: the workers' environment, a failed rank named
// with its status (and the exit code it gives), the other ranks stopped after the failure
// timeout, SIGTERM passed on to the workers, and workers that cannot start.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "common/error.h"
#include "dist/dist_env.h"
#include "dist/distributed.h"
#include "dist/launcher.h"
#include "dist_test_util.h"

namespace focaldet::dist {
namespace {

using test::run_ranks;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(DistWorker, SeesLauncherEnvironment) {
  FOCALDET_ONLY_AS_RANK();
  const DistEnv env = read_dist_env();
  EXPECT_EQ(env.world_size, 2);
  EXPECT_EQ(env.local_world_size, 2);
  EXPECT_EQ(env.local_rank, env.rank);
  EXPECT_EQ(env.master_addr, "127.0.0.1");
  EXPECT_GT(env.master_port, 0);
  EXPECT_FALSE(env.use_agent_store);  // the launcher's own TORCHELASTIC_* do not leak
  EXPECT_EQ(std::getenv("TORCHELASTIC_RESTART_COUNT"), nullptr);
  EXPECT_EQ(test::env_or("FOCALDET_TEST_EXTRA", ""), "passed on");
  test::mark_rank_passed();
}

TEST(DistLauncher, WorkersGetRankWorldSizeAndMaster) {
  // As if the launcher itself ran under torchrun: its variables must not reach the workers.
  ::setenv("TORCHELASTIC_USE_AGENT_STORE", "True", 1);
  ::setenv("TORCHELASTIC_RESTART_COUNT", "4", 1);
  ::setenv("RANK", "5", 1);
  const test::RankRun run =
      run_ranks("SeesLauncherEnvironment", 2, {{"FOCALDET_TEST_EXTRA", "passed on"}});
  ::unsetenv("TORCHELASTIC_USE_AGENT_STORE");
  ::unsetenv("TORCHELASTIC_RESTART_COUNT");
  ::unsetenv("RANK");
  EXPECT_EQ(run.result.exit_code, 0) << run.describe();
  EXPECT_EQ(run.result.first_failed_rank, -1);
  EXPECT_TRUE(run.result.summary.empty()) << run.result.summary;
  EXPECT_TRUE(run.passed[0] && run.passed[1]) << run.describe();
}

// Rank 1 exits with status 3 after setup; rank 0's next collective fails.
TEST(DistWorker, RankOneExitsThree) {
  FOCALDET_ONLY_AS_RANK();
  Distributed d(read_dist_env(), {/*timeout_seconds=*/5, /*setup_timeout_seconds=*/10});
  d.barrier();
  if (d.rank() == 1) std::_Exit(3);
  EXPECT_THROW(d.barrier(), Error);
  test::mark_rank_passed();
}

TEST(DistLauncher, FailedRankIsNamedWithItsStatus) {
  const test::RankRun run = run_ranks("RankOneExitsThree", 2);
  EXPECT_EQ(run.result.exit_code, 3) << run.describe();
  EXPECT_EQ(run.result.first_failed_rank, 1);
  EXPECT_EQ(run.result.workers[1].exit_code, 3);
  EXPECT_TRUE(run.passed[0]) << run.describe();  // rank 0 saw an Error, not a hang
  EXPECT_TRUE(contains(run.result.summary, "rank 1 of 2 (pid ")) << run.result.summary;
  EXPECT_TRUE(contains(run.result.summary,
                       ") exited with status 3 first; rank 0 exited with "
                       "status 0"))
      << run.result.summary;
}

TEST(DistLauncher, LaunchLocalWorkersReturnsTheStatusAndSaysWhichRank) {
  test::TempDir out;
  testing::internal::CaptureStderr();
  LaunchOptions options;
  options.env = {{"FOCALDET_TEST_WORKER", "1"}, {"FOCALDET_TEST_OUT", out.str()}};
  options.quiet = true;
  const int code = launch_local_workers(
      2, {"test_dist", "--gtest_filter=DistWorker.RankOneExitsThree", "--gtest_brief=1"}, options);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(code, 3);
  EXPECT_TRUE(contains(err, "focaldet: rank 1 of 2 (pid ")) << err;
  EXPECT_TRUE(contains(err, "exited with status 3 first")) << err;
}

// Rank 1 fails at once; rank 0 would sleep on for a minute.
TEST(DistWorker, RankOneFailsRankZeroSleeps) {
  FOCALDET_ONLY_AS_RANK();
  if (test::this_rank() == 1) std::_Exit(4);
  std::this_thread::sleep_for(std::chrono::seconds(60));
}

TEST(DistLauncher, OtherRanksAreStoppedAfterTheFailureTimeout) {
  LaunchOptions options;
  options.failure_timeout_seconds = 0.5;
  const Clock::time_point start = Clock::now();
  const test::RankRun run = run_ranks("RankOneFailsRankZeroSleeps", 2, {}, options);
  EXPECT_LT(seconds_since(start), 10.0);
  EXPECT_EQ(run.result.exit_code, 4) << run.describe();
  EXPECT_EQ(run.result.first_failed_rank, 1);
  EXPECT_EQ(run.result.workers[0].signal, SIGTERM) << run.describe();
  EXPECT_TRUE(run.result.workers[0].stopped_by_launcher);
  EXPECT_TRUE(contains(run.result.summary,
                       "rank 0 was killed by signal 15 (Terminated) (stopped by the launcher)"))
      << run.result.summary;
}

TEST(DistWorker, SleepUntilSignalled) {
  FOCALDET_ONLY_AS_RANK();
  std::this_thread::sleep_for(std::chrono::seconds(60));
}

TEST(DistLauncher, SigtermIsPassedOnToTheWorkers) {
  const Clock::time_point start = Clock::now();
  std::thread sender([] {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    ::kill(::getpid(), SIGTERM);  // the launcher's handler is in place by now
  });
  const test::RankRun run = run_ranks("SleepUntilSignalled", 2);
  sender.join();
  EXPECT_LT(seconds_since(start), 10.0);
  EXPECT_EQ(run.result.forwarded_signal, SIGTERM);
  EXPECT_EQ(run.result.exit_code, 128 + SIGTERM) << run.describe();
  EXPECT_EQ(run.result.summary.rfind("after signal 15 (passed on to the workers): rank ", 0), 0u)
      << run.result.summary;
  for (const WorkerExit& w : run.result.workers) {
    EXPECT_EQ(w.signal, SIGTERM) << run.describe();
    EXPECT_FALSE(w.stopped_by_launcher);
  }
}

TEST(DistLauncher, MissingExecutableIsAnError) {
  LaunchOptions options;
  options.executable = "/nonexistent/focaldet";
  try {
    run_local_workers(2, {"focaldet", "train"}, options);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "cannot start a worker: /nonexistent/focaldet: No such file or directory");
  }
}

TEST(DistLauncher, NprocMustBePositive) { EXPECT_THROW(run_local_workers(0, {"focaldet"}), Error); }

TEST(DistLauncher, FreePortsAreUsablePorts) {
  const int port = pick_free_port();
  EXPECT_GT(port, 0);
  EXPECT_LE(port, 65535);
}

}  // namespace
}  // namespace focaldet::dist
