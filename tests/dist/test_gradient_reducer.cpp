// GradientReducer: every gradient becomes the mean of the two ranks' gradients, bit for bit as
// computed by hand, for buckets smaller than one tensor, spanning several, and holding all; in
// overlap (hook) mode and after backward; with a parameter used twice, one used on one rank
// only, one unused everywhere and one frozen; with gradients zeroed or accumulated between
// steps. Overlap matches the simple mode on a small conv net, a rank killed mid-step is an
// Error naming the bucket and the rank, and misuse (two backwards) is an Error.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <torch/types.h>

#include <chrono>
#include <thread>

#include "common/error.h"
#include "dist/distributed.h"
#include "dist/gradient_reducer.h"
#include "dist_test_util.h"

namespace focaldet::dist {
namespace {

using test::run_ranks;

void expect_all_passed(const test::RankRun& run) {
  EXPECT_EQ(run.result.exit_code, 0) << run.describe();
  for (std::size_t r = 0; r < run.passed.size(); ++r) {
    EXPECT_TRUE(run.passed[r]) << "rank " << r << ": " << run.describe();
  }
}

// The parameters of the hand-made model: sizes chosen so that 1 KiB buckets are smaller than
// most tensors, 20 KiB buckets span several, and 10 MB hold all.
struct Params {
  std::vector<torch::Tensor> list;  // p0..p6, then a frozen one
  Params() {
    torch::manual_seed(0);
    for (const std::vector<int64_t>& shape :
         std::vector<std::vector<int64_t>>{{1000}, {30, 100}, {50}, {20000}, {7}, {4000}, {64}}) {
      list.push_back(torch::randn(shape).requires_grad_());
    }
    list.push_back(torch::randn({10}));  // frozen: requires_grad false
  }
};
constexpr int kShared = 4;       // used twice in the loss
constexpr int kRankOneOnly = 5;  // used on rank 1 only
constexpr int kUnused = 6;       // used on no rank
constexpr int kFrozen = 7;

// The constant rank `rank` multiplies parameter i with at `step` (use 1: the second use of the
// shared parameter); the loss sum(p * c) has gradient c exactly, so every rank can compute
// every rank's gradient by hand.
torch::Tensor coefficient(const torch::Tensor& p, int step, int rank, int i, int use = 0) {
  torch::manual_seed(1000 * step + 100 * rank + 10 * i + use);
  return torch::randn(p.sizes());
}

bool used(int rank, int i) {
  if (i == kUnused || i == kFrozen) return false;
  return i != kRankOneOnly || rank == 1;
}

// What backward adds to parameter i's gradient on `rank` at `step` (undefined when unused).
torch::Tensor local_gradient(const Params& m, int step, int rank, int i) {
  if (!used(rank, i)) return {};
  torch::Tensor g = coefficient(m.list[i], step, rank, i);
  if (i == kShared) g = g + coefficient(m.list[i], step, rank, i, /*use=*/1);
  return g;
}

void backward(const Params& m, int step, int rank) {
  torch::Tensor loss = torch::zeros({});
  for (int i = 0; i < static_cast<int>(m.list.size()); ++i) {
    if (!used(rank, i)) continue;
    loss = loss + (m.list[i] * coefficient(m.list[i], step, rank, i)).sum();
    if (i == kShared) loss = loss + (m.list[i] * coefficient(m.list[i], step, rank, i, 1)).sum();
  }
  loss.backward();
}

// Three steps: grads undefined before the first, accumulated (not zeroed) before the second,
// zeroed before the third. Expected grads by hand: each rank's grad as it stands after
// backward, summed over the two ranks (one IEEE addition of two floats, commutative, as Gloo
// does it) and halved (exact): torch::equal is the right comparison.
void check_mean_over_steps(Distributed& d, const GradientReducerOptions& options) {
  Params m;
  GradientReducer reducer(d, m.list, options);
  const int n = static_cast<int>(m.list.size());
  std::vector<torch::Tensor> before(n);  // the grads (identical on both ranks) before a step
  for (int step = 1; step <= 3; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    if (step == 3) {
      for (int i = 0; i < n; ++i) {
        if (m.list[i].grad().defined()) m.list[i].mutable_grad().zero_();
        if (before[i].defined()) before[i] = torch::zeros_like(before[i]);
      }
    }
    backward(m, step, d.rank());
    reducer.synchronize();
    for (int i = 0; i < n; ++i) {
      SCOPED_TRACE("parameter " + std::to_string(i));
      std::vector<torch::Tensor> after_backward(2);
      bool any = false;
      for (int r = 0; r < 2; ++r) {
        const torch::Tensor g = local_gradient(m, step, r, i);
        if (before[i].defined() && g.defined()) {
          after_backward[r] = before[i] + g;
        } else {
          after_backward[r] = before[i].defined() ? before[i] : g;
        }
        any = any || after_backward[r].defined();
      }
      if (!any) {
        EXPECT_FALSE(m.list[i].grad().defined());
        continue;
      }
      for (torch::Tensor& t : after_backward) {
        if (!t.defined()) t = torch::zeros_like(m.list[i]);
      }
      const torch::Tensor expected = (after_backward[0] + after_backward[1]) / 2;
      ASSERT_TRUE(m.list[i].grad().defined());
      EXPECT_TRUE(torch::equal(m.list[i].grad(), expected))
          << "max difference " << (m.list[i].grad() - expected).abs().max().item<float>();
      before[i] = expected;
    }
  }
}

TEST(DistWorker, GradientMean) {
  FOCALDET_ONLY_AS_RANK();
  at::set_num_threads(1);
  Distributed d(read_dist_env(), {/*timeout_seconds=*/10});
  for (const double mb : {1.0 / 1024, 20.0 / 1024, 10.0}) {
    for (const bool overlap : {true, false}) {
      SCOPED_TRACE("bucket " + std::to_string(mb) + " MB, overlap " + std::to_string(overlap));
      check_mean_over_steps(d, {mb, overlap});
    }
  }
  Params m;
  // 7 parameters that require grad, 4 of them above 1 KiB; 80 kB p3 alone above 20 KiB.
  EXPECT_GE(GradientReducer(d, m.list, {1.0 / 1024}).num_buckets(), 5);
  const int middle = GradientReducer(d, m.list, {20.0 / 1024}).num_buckets();
  EXPECT_GT(middle, 1);
  EXPECT_LT(middle, 7);
  const GradientReducer one(d, m.list, {10.0});
  EXPECT_EQ(one.num_buckets(), 1);
  int64_t total = 0;
  for (int i = 0; i < kFrozen; ++i) total += m.list[i].numel();
  EXPECT_EQ(one.bucket_sizes(), std::vector<int64_t>{total});
  test::mark_rank_passed();
}

TEST(DistGradientReducer, GradientsBecomeTheExactMeanForEveryBucketSize) {
  expect_all_passed(run_ranks("GradientMean", 2));
}

// A small conv net, for a real backward order: two convs, a linear head.
struct ConvNet {
  std::vector<torch::Tensor> params;
  ConvNet() {
    torch::manual_seed(7);
    for (const std::vector<int64_t>& shape : std::vector<std::vector<int64_t>>{
             {16, 3, 3, 3}, {16}, {32, 16, 3, 3}, {32}, {64, 32, 3, 3}, {64}, {10, 64}, {10}}) {
      params.push_back((torch::randn(shape) * 0.1).requires_grad_());
    }
  }
  torch::Tensor loss(const torch::Tensor& x) const {
    torch::Tensor h = torch::relu(torch::conv2d(x, params[0], params[1], 1, 1));
    h = torch::relu(torch::conv2d(h, params[2], params[3], 1, 1));
    h = torch::relu(torch::conv2d(h, params[4], params[5], 1, 1));
    return torch::linear(h.mean({2, 3}), params[6], params[7]).pow(2).sum();
  }
};

TEST(DistWorker, OverlapMatchesSimple) {
  FOCALDET_ONLY_AS_RANK();
  at::set_num_threads(1);
  Distributed d(read_dist_env(), {/*timeout_seconds=*/10});
  ConvNet a, b;
  GradientReducer overlapped(d, a.params, {/*bucket_mb=*/0.01, /*overlap=*/true});
  GradientReducer simple(d, b.params, {/*bucket_mb=*/0.01, /*overlap=*/false});
  ASSERT_GT(overlapped.num_buckets(), 2);
  for (int step = 0; step < 3; ++step) {
    torch::manual_seed(100 * step + d.rank());
    const torch::Tensor x = torch::randn({2, 3, 16, 16});
    for (auto* net : {&a, &b}) {
      for (auto& p : net->params) {
        if (p.grad().defined()) p.mutable_grad().zero_();
      }
    }
    a.loss(x).backward();
    overlapped.synchronize();
    b.loss(x).backward();
    simple.synchronize();
    // Each rank's local grads are the same computation in both nets; the sums too.
    for (std::size_t i = 0; i < a.params.size(); ++i) {
      EXPECT_TRUE(torch::equal(a.params[i].grad(), b.params[i].grad())) << "parameter " << i;
    }
    EXPECT_GT(overlapped.buckets_started_in_backward(), 0);
    EXPECT_EQ(simple.buckets_started_in_backward(), 0);
  }
  test::mark_rank_passed();
}

TEST(DistGradientReducer, OverlapMatchesReducingAfterBackward) {
  expect_all_passed(run_ranks("OverlapMatchesSimple", 2));
}

TEST(DistWorker, TwoBackwardsWithOverlap) {
  FOCALDET_ONLY_AS_RANK();
  Distributed d(read_dist_env(), {/*timeout_seconds=*/10});
  ConvNet net;
  GradientReducer reducer(d, net.params, {/*bucket_mb=*/0.01, /*overlap=*/true});
  const torch::Tensor x = torch::randn({1, 3, 8, 8});
  net.loss(x).backward();
  net.loss(x).backward();
  try {
    reducer.synchronize();
    ADD_FAILURE() << "two backwards before synchronize() went unnoticed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("was produced twice before synchronize()"),
              std::string::npos)
        << e.what();
  }
  // The reducer is usable again.
  net.loss(x).backward();
  reducer.synchronize();
  test::mark_rank_passed();
}

TEST(DistGradientReducer, TwoBackwardsBeforeSynchronizeIsAnError) {
  expect_all_passed(run_ranks("TwoBackwardsWithOverlap", 2));
}

TEST(DistWorker, PeerKilledDuringGradientSync) {
  FOCALDET_ONLY_AS_RANK();
  Distributed d(read_dist_env(), {/*timeout_seconds=*/5, /*setup_timeout_seconds=*/10});
  ConvNet net;
  GradientReducer reducer(d, net.params, {/*bucket_mb=*/0.01, /*overlap=*/true});
  d.barrier();
  if (d.rank() == 1) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ::raise(SIGKILL);
  }
  const auto start = std::chrono::steady_clock::now();
  try {
    net.loss(torch::randn({1, 3, 8, 8})).backward();
    reducer.synchronize();
    ADD_FAILURE() << "gradients synchronized with a killed peer";
  } catch (const Error& e) {
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 5.0);
    const std::string message = e.what();
    EXPECT_NE(message.find("all-reduce of gradient bucket 1 of "), std::string::npos) << message;
    EXPECT_NE(message.find("failed on rank 0 of 2: rank 1 closed its connection"),
              std::string::npos)
        << message;
  }
  test::mark_rank_passed();
}

TEST(DistGradientReducer, KilledRankDuringSyncIsAnErrorNamingBucketAndRank) {
  const test::RankRun run = run_ranks("PeerKilledDuringGradientSync", 2);
  EXPECT_TRUE(run.passed[0]) << run.describe();
  EXPECT_EQ(run.result.workers[1].signal, SIGKILL) << run.describe();
}

TEST(DistGradientReducer, OneProcessLeavesGradientsAlone) {
  Distributed d(DistEnv{});
  ConvNet net;
  GradientReducer reducer(d, net.params);
  EXPECT_EQ(reducer.num_buckets(), 0);
  net.loss(torch::randn({1, 3, 8, 8})).backward();
  const torch::Tensor before = net.params[0].grad().clone();
  reducer.synchronize();
  EXPECT_TRUE(torch::equal(net.params[0].grad(), before));
}

}  // namespace
}  // namespace focaldet::dist
