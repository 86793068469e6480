// Distributed: world size 1 is the identity; with 2 ranks (processes of this binary, see
// dist_test_util.h) broadcast, all_reduce_sum, all_gather_bytes and barrier; torchrun's agent
// store; and failures: a rank killed, a rank hung, a rank that never comes, each an Error
// within the timeout that says what failed and which rank.
#include <gtest/gtest.h>
#include <signal.h>
#include <torch/types.h>
#include <unistd.h>

#include <chrono>
#include <iterator>
#include <thread>

#include "common/error.h"
#include "dist/dist_env.h"
#include "dist/distributed.h"
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

// Both ranks ran their test to the end without a failure.
void expect_all_passed(const test::RankRun& run) {
  EXPECT_EQ(run.result.exit_code, 0) << run.describe();
  for (std::size_t r = 0; r < run.passed.size(); ++r) {
    EXPECT_TRUE(run.passed[r]) << "rank " << r << ": " << run.describe();
  }
}

DistEnv two_ranks(int rank, int port) {
  DistEnv env;
  env.rank = rank;
  env.world_size = 2;
  env.local_rank = rank;
  env.local_world_size = 2;
  env.master_addr = "127.0.0.1";
  env.master_port = port;
  env.source = "test";
  return env;
}

// ---- world size 1 --------------------------------------------------------------------------

TEST(DistSingle, EveryCollectiveIsTheIdentity) {
  Distributed d(DistEnv{});
  EXPECT_FALSE(d.enabled());
  EXPECT_TRUE(d.is_main());
  EXPECT_EQ(d.world_size(), 1);
  std::vector<torch::Tensor> tensors{torch::arange(6, torch::kFloat)};
  d.broadcast(tensors);
  EXPECT_TRUE(torch::equal(tensors[0], torch::arange(6, torch::kFloat)));
  std::vector<double> values{1.5, -2};
  d.all_reduce_sum(values);
  EXPECT_EQ(values, (std::vector<double>{1.5, -2}));
  d.barrier();
  EXPECT_EQ(d.all_gather_bytes("abc"), std::vector<std::string>{"abc"});
  PendingCollective pending = d.all_reduce_sum_async(tensors[0], "x");
  EXPECT_FALSE(pending.pending());
  pending.wait();
}

// ---- two ranks -----------------------------------------------------------------------------

TEST(DistWorker, Broadcast) {
  FOCALDET_ONLY_AS_RANK();
  Distributed d(read_dist_env(), {/*timeout_seconds=*/10});
  const int r = d.rank();
  // A parameter (requires grad), an int64 buffer (num_batches_tracked), a non-contiguous
  // double view, an empty tensor: each rank starts from its own values.
  torch::Tensor weight = torch::full({3, 4}, static_cast<float>(r + 1)).requires_grad_();
  torch::Tensor counter = torch::full({}, static_cast<int64_t>(10 * r + 7), torch::kLong);
  torch::Tensor base = torch::arange(12, torch::kDouble).add(100.0 * r).reshape({3, 4});
  torch::Tensor strided = base.t();
  torch::Tensor empty = torch::empty({0});
  std::vector<torch::Tensor> tensors{weight, counter, strided, empty};
  d.broadcast(tensors);
  EXPECT_TRUE(torch::equal(weight, torch::ones({3, 4})));  // rank 0 had r + 1 = 1
  EXPECT_TRUE(weight.requires_grad());
  EXPECT_EQ(counter.item<int64_t>(), 7);
  EXPECT_TRUE(torch::equal(base, torch::arange(12, torch::kDouble).reshape({3, 4})));
  test::mark_rank_passed();
}

TEST(DistCollectives, BroadcastGivesEveryRankRootsTensors) {
  expect_all_passed(run_ranks("Broadcast", 2));
}

TEST(DistWorker, BroadcastShapeMismatch) {
  FOCALDET_ONLY_AS_RANK();
  Distributed d(read_dist_env(), {/*timeout_seconds=*/10});
  std::vector<torch::Tensor> tensors{torch::zeros({3, 4 + d.rank()})};
  try {
    d.broadcast(tensors);
    ADD_FAILURE() << "no error for tensors of other shapes";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "broadcast: rank 1's 1-tensor list differs from rank 0's"))
        << e.what();
  }
  test::mark_rank_passed();
}

TEST(DistCollectives, BroadcastOfOtherShapesIsAnErrorOnEveryRank) {
  expect_all_passed(run_ranks("BroadcastShapeMismatch", 2));
}

TEST(DistWorker, AllReduceSum) {
  FOCALDET_ONLY_AS_RANK();
  Distributed d(read_dist_env(), {/*timeout_seconds=*/10});
  const double r = d.rank();
  std::vector<double> values{r + 1, 0.25 * r, -1e-3, 1e15 * r};
  d.all_reduce_sum(values);
  // Sums of two doubles, each exact: 1 + 2, 0 + 0.25, twice -1e-3, 0 + 1e15.
  EXPECT_EQ(values, (std::vector<double>{3, 0.25, -2e-3, 1e15}));
  std::vector<double> none;
  d.all_reduce_sum(none);
  d.barrier();
  test::mark_rank_passed();
}

TEST(DistCollectives, AllReduceSumAddsEveryRanksValues) {
  expect_all_passed(run_ranks("AllReduceSum", 2));
}

std::string bytes_of_length(int n) {
  std::string s(n, '\0');
  for (int i = 0; i < n; ++i) s[i] = static_cast<char>(i * 7 % 256);  // zeros inside
  return s;
}

TEST(DistWorker, AllGatherBytes) {
  FOCALDET_ONLY_AS_RANK();
  Distributed d(read_dist_env(), {/*timeout_seconds=*/10});
  const int r = d.rank();
  const std::string mine = r == 0 ? std::string() : bytes_of_length(1000);
  EXPECT_EQ(d.all_gather_bytes(mine), (std::vector<std::string>{"", bytes_of_length(1000)}));
  EXPECT_EQ(d.all_gather_bytes(""), (std::vector<std::string>{"", ""}));
  EXPECT_EQ(d.all_gather_bytes(r == 0 ? "abc" : "de"), (std::vector<std::string>{"abc", "de"}));
  test::mark_rank_passed();
}

TEST(DistCollectives, AllGatherBytesOfUnequalLengths) {
  expect_all_passed(run_ranks("AllGatherBytes", 2));
}

// torchrun's static rendezvous: the agent hosts the store; every rank is a client under
// /worker/attempt_<n>. Debian's torchrun (torch 1.13) needs --redirects/--tee other than 0.
TEST(DistWorker, AgentStore) {
  FOCALDET_ONLY_AS_RANK();
  const DistEnv env = read_dist_env();
  EXPECT_TRUE(env.use_agent_store);
  Distributed d(env, {/*timeout_seconds=*/10});
  std::vector<double> values{1.0};
  d.all_reduce_sum(values);
  EXPECT_EQ(values[0], 2.0);
  EXPECT_EQ(d.all_gather_bytes(std::to_string(d.rank())), (std::vector<std::string>{"0", "1"}));
  test::mark_rank_passed();
}

TEST(DistCollectives, UnderTorchrunEveryRankUsesTheAgentsStore) {
  if (std::system("command -v torchrun > /dev/null 2>&1") != 0) {
    GTEST_SKIP() << "torchrun (python3-torch) is not installed";
  }
  test::TempDir dir;
  char self[4096] = {};
  ASSERT_GT(::readlink("/proc/self/exe", self, sizeof self - 1), 0);
  const std::string command =
      "FOCALDET_TEST_WORKER=1 FOCALDET_TEST_OUT=" + dir.str() +
      " torchrun --nproc_per_node 2 --redirects 1 --tee 1 --log_dir " + dir.str() +
      "/logs --master_addr 127.0.0.1 --master_port " + std::to_string(pick_free_port()) +
      " --monitor_interval 0.2 --no_python " + self +
      " --gtest_filter=DistWorker.AgentStore --gtest_brief=1 > " + dir.str() + "/out.txt 2>&1";
  const int status = std::system(command.c_str());
  std::ifstream out(dir / "out.txt");
  const std::string output((std::istreambuf_iterator<char>(out)), std::istreambuf_iterator<char>());
  EXPECT_EQ(status, 0) << output;
  EXPECT_TRUE(std::filesystem::exists(dir / "rank0.ok")) << output;
  EXPECT_TRUE(std::filesystem::exists(dir / "rank1.ok")) << output;
}

// ---- failures ------------------------------------------------------------------------------

TEST(DistWorker, PeerKilled) {
  FOCALDET_ONLY_AS_RANK();
  Distributed d(read_dist_env(), {/*timeout_seconds=*/5, /*setup_timeout_seconds=*/10});
  d.barrier();
  if (d.rank() == 1) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // rank 0 waits in the call
    ::raise(SIGKILL);
  }
  const Clock::time_point start = Clock::now();
  try {
    std::vector<double> values{1.0};
    d.all_reduce_sum(values);
    ADD_FAILURE() << "the all-reduce with a killed peer returned";
  } catch (const Error& e) {
    EXPECT_LT(seconds_since(start), 5.0);
    EXPECT_TRUE(contains(e.what(),
                         "all-reduce of 1 statistics failed on rank 0 of 2: rank 1 "
                         "closed its connection (it exited, crashed or was killed)"))
        << e.what();
  }
  test::mark_rank_passed();
}

TEST(DistFailure, KilledRankIsAnErrorNamingItWithinTheTimeout) {
  const Clock::time_point start = Clock::now();
  const test::RankRun run = run_ranks("PeerKilled", 2);
  EXPECT_LT(seconds_since(start), 10.0);
  EXPECT_TRUE(run.passed[0]) << run.describe();
  EXPECT_EQ(run.result.workers[1].signal, SIGKILL) << run.describe();
  EXPECT_EQ(run.result.workers[0].exit_code, 0) << run.describe();
}

TEST(DistWorker, PeerHung) {
  FOCALDET_ONLY_AS_RANK();
  Distributed d(read_dist_env(), {/*timeout_seconds=*/1, /*setup_timeout_seconds=*/10});
  d.barrier();
  if (d.rank() == 1) {
    std::this_thread::sleep_for(std::chrono::seconds(3));  // alive, but not in the collective
    test::mark_rank_passed();
    return;
  }
  const Clock::time_point start = Clock::now();
  try {
    std::vector<double> values{1.0};
    d.all_reduce_sum(values);
    ADD_FAILURE() << "the all-reduce with a hung peer returned";
  } catch (const Error& e) {
    const double waited = seconds_since(start);
    EXPECT_GT(waited, 0.8);
    EXPECT_LT(waited, 2.9);
    EXPECT_TRUE(contains(e.what(),
                         "all-reduce of 1 statistics failed on rank 0 of 2: rank 1 "
                         "stopped responding: no answer within the timeout of 1 s"))
        << e.what();
  }
  test::mark_rank_passed();
}

TEST(DistFailure, HungRankIsAnErrorAfterTheTimeout) { expect_all_passed(run_ranks("PeerHung", 2)); }

TEST(DistFailure, RankThatNeverComesIsASetupErrorAfterTheTimeout) {
  // Rank 0 hosts the store and waits for rank 1, which is never started.
  const Clock::time_point start = Clock::now();
  try {
    Distributed d(two_ranks(0, pick_free_port()), {/*timeout_seconds=*/1});
    ADD_FAILURE() << "set up without rank 1";
  } catch (const Error& e) {
    // The store's wait (1 s), then Gloo's connection attempt (1 s), on a busy machine.
    EXPECT_LT(seconds_since(start), 8.0);
    EXPECT_TRUE(contains(e.what(), "distributed setup of rank 0 of 2 (test, store 127.0.0.1:"))
        << e.what();
    EXPECT_TRUE(contains(e.what(), "(timeout 1 s)")) << e.what();
    EXPECT_TRUE(contains(e.what(),
                         "Not every rank joined in time: are all 2 ranks started, "
                         "with the same MASTER_ADDR and MASTER_PORT?"))
        << e.what();
  }
}

TEST(DistFailure, NoStoreIsASetupErrorAfterTheTimeout) {
  // Rank 1 connects to a store nobody hosts.
  const Clock::time_point start = Clock::now();
  try {
    Distributed d(two_ranks(1, pick_free_port()), {/*timeout_seconds=*/1});
    ADD_FAILURE() << "set up without a store";
  } catch (const Error& e) {
    EXPECT_LT(seconds_since(start), 5.0);
    EXPECT_TRUE(contains(e.what(), "distributed setup of rank 1 of 2")) << e.what();
    EXPECT_TRUE(contains(e.what(), "connecting to the rendezvous store (timeout 1 s)")) << e.what();
    EXPECT_TRUE(contains(e.what(), "connect to (127.0.0.1, ")) << e.what();
    EXPECT_TRUE(contains(e.what(),
                         "). Nothing answered at MASTER_ADDR:MASTER_PORT in time: is "
                         "rank 0 (or torchrun's agent) running there?"))
        << e.what();
  }
}

// ---- the failure message -------------------------------------------------------------------

TEST(DistFailureMessage, ClosedConnectionIsNamedByItsAddress) {
  const std::vector<std::string> addresses{"", "[127.0.0.1]:4001", "[127.0.0.1]:4002",
                                           "[127.0.0.1]:4003"};
  EXPECT_EQ(describe_collective_failure(
                "barrier", 0, 4, 30,
                "[./gloo/transport/tcp/pair.cc:598] Connection closed by peer [127.0.0.1]:4002",
                addresses),
            "barrier failed on rank 0 of 4: rank 2 closed its connection (it exited, crashed or "
            "was killed) [gloo: Connection closed by peer [127.0.0.1]:4002]");
  EXPECT_EQ(describe_collective_failure(
                "barrier", 0, 4, 30,
                "[./gloo/transport/tcp/pair.cc:589] Read error [127.0.0.1]:4003: Connection reset "
                "by peer",
                addresses),
            "barrier failed on rank 0 of 4: rank 3 closed its connection (it exited, crashed or "
            "was killed) [gloo: Read error [127.0.0.1]:4003: Connection reset by peer]");
}

TEST(DistFailureMessage, UnknownAddressNamesTheOnlyPeerOrNone) {
  const std::string closed = "Connection closed by peer [10.0.0.9]:77";
  EXPECT_EQ(describe_collective_failure("x", 1, 2, 30, closed, {}),
            "x failed on rank 1 of 2: rank 0 closed its connection (it exited, crashed or was "
            "killed) [gloo: Connection closed by peer [10.0.0.9]:77]");
  EXPECT_EQ(describe_collective_failure("x", 1, 4, 30, closed, {}),
            "x failed on rank 1 of 4: a peer rank ([10.0.0.9]:77, of world size 4) closed its "
            "connection (it exited, crashed or was killed) [gloo: Connection closed by peer "
            "[10.0.0.9]:77]");
}

TEST(DistFailureMessage, TimeoutSaysAPeerStoppedResponding) {
  const std::string timed_out =
      "[./gloo/transport/tcp/unbound_buffer.cc:81] Timed out waiting 3000ms for recv operation "
      "to complete";
  EXPECT_EQ(describe_collective_failure("x", 0, 4, 3, timed_out, {}),
            "x failed on rank 0 of 4: a peer rank (of world size 4) stopped responding: no answer "
            "within the timeout of 3 s (hung, far slower, or stopped) [gloo: Timed out waiting "
            "3000ms for recv operation to complete]");
  EXPECT_EQ(describe_collective_failure("x", 0, 3, 3, "something else", {}),
            "x failed on rank 0 of 3: a peer rank stopped responding (of world size 3, timeout "
            "3 s) [gloo: something else]");
}

}  // namespace
}  // namespace focaldet::dist
