// ATSS by hand (Zhang et al. 2020, Alg. 1). Six anchors on two levels (4 + 2), top_k = 2, so
// each gt's candidates are its two nearest level-0 anchors and both level-1 anchors; IoUs are
// exact fractions, the threshold is mean + unbiased std of the candidates' IoUs.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "anchors/anchor_generator.h"
#include "assign/atss.h"
#include "common/error.h"

namespace focaldet::assign {
namespace {

at::Tensor atss_anchors() {
  return at::tensor({0.f,  0.f,  10.f, 9.f,    // a0, centre (5, 4.5)
                     3.f,  1.f,  11.f, 9.f,    // a1, centre (7, 5)
                     10.f, 0.f,  18.f, 8.f,    // a2, centre (14, 4)
                     0.f,  16.f, 8.f,  24.f,   // a3, centre (4, 20)
                     0.f,  0.f,  16.f, 16.f,   // b0 (level 1)
                     16.f, 0.f,  32.f, 16.f})  // b1 (level 1)
      .view({6, 4});
}
const std::vector<int64_t> kLevels = {4, 2};

AtssOptions top2() {
  AtssOptions o;
  o.top_k = 2;
  return o;
}

double mean_plus_std(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m += x;
  m /= v.size();
  double ss = 0;
  for (double x : v) ss += (x - m) * (x - m);
  return m + std::sqrt(ss / (v.size() - 1));
}

TEST(Atss, ThresholdIsMeanPlusStdOfCandidates) {
  // gt [0, 0, 10, 10], centre (5, 5): nearest level-0 anchors a0 (0.5 away), a1 (2 away).
  // IoUs: a0 90/100, a1 56/108, b0 100/256, b1 0 -> threshold 0.8234: only a0 is positive.
  const double thr = mean_plus_std({0.9, 56.0 / 108, 100.0 / 256, 0.0});
  ASSERT_NEAR(thr, 0.8234, 1e-4);
  ASSERT_GT(0.9, thr);
  ASSERT_LT(56.0 / 108, thr);
  const at::Tensor gt = at::tensor({0.f, 0.f, 10.f, 10.f}).view({1, 4});
  const AssignResult r =
      assign_atss(atss_anchors(), kLevels, {gt, at::tensor({4}, at::kLong), {}}, top2());
  EXPECT_TRUE(at::equal(r.matched_gt, at::tensor({0, -1, -1, -1, -1, -1}, at::kLong)));
  EXPECT_TRUE(at::equal(r.labels, at::tensor({4, -1, -1, -1, -1, -1}, at::kLong)));
}

TEST(Atss, AnchorClaimedTwiceGoesToHigherIoU) {
  // gt 0 = [0, 0, 10, 10] takes a0 with IoU 0.9 (above). gt 1 = [0, 0, 11, 9]: IoUs a0 90/99,
  // a1 64/99, b0 99/256, b1 0 -> threshold 0.8732 < 90/99: a0 is positive for both, and
  // 90/99 = 0.909 > 0.9 gives it to gt 1.
  const double thr = mean_plus_std({90.0 / 99, 64.0 / 99, 99.0 / 256, 0.0});
  ASSERT_LT(thr, 90.0 / 99);
  const at::Tensor gt = at::tensor({0.f, 0.f, 10.f, 10.f, 0.f, 0.f, 11.f, 9.f}).view({2, 4});
  const AssignResult r =
      assign_atss(atss_anchors(), kLevels, {gt, at::tensor({0, 1}, at::kLong), {}}, top2());
  EXPECT_TRUE(at::equal(r.matched_gt, at::tensor({1, -1, -1, -1, -1, -1}, at::kLong)));
}

TEST(Atss, CandidateCentreMustLieInsideTheBox) {
  // gt [0, 0, 10, 4], centre (5, 2): IoUs a0 40/90, a1 21/83, b0 40/256, b1 0 -> threshold
  // 0.3994 < 0.444, but a0's centre (5, 4.5) is below the box: not positive; nothing is.
  const double thr = mean_plus_std({40.0 / 90, 21.0 / 83, 40.0 / 256, 0.0});
  ASSERT_LT(thr, 40.0 / 90);
  const at::Tensor gt = at::tensor({0.f, 0.f, 10.f, 4.f}).view({1, 4});
  const GroundTruth truth{gt, at::tensor({0}, at::kLong), {}};
  EXPECT_EQ(assign_atss(atss_anchors(), kLevels, truth, top2()).num_pos(), 0);
  // Allowing centres up to 1 px outside (margin -1) admits a0 (0.5 px outside).
  AtssOptions loose = top2();
  loose.center_margin = -1.0;
  EXPECT_TRUE(at::equal(assign_atss(atss_anchors(), kLevels, truth, loose).matched_gt,
                        at::tensor({0, -1, -1, -1, -1, -1}, at::kLong)));
}

TEST(Atss, CrowdRegionIgnoresBackgroundUnderIt) {
  // The object of the first test plus a crowd region over a3 only: a3 becomes ignored.
  const at::Tensor gt = at::tensor({0.f, 0.f, 10.f, 10.f}).view({1, 4});
  const at::Tensor crowd = at::tensor({0.f, 16.5f, 9.f, 30.f}).view({1, 4});
  const GroundTruth truth{gt, at::tensor({4}, at::kLong), crowd};
  const AssignResult r = assign_atss(atss_anchors(), kLevels, truth, top2());
  EXPECT_TRUE(at::equal(r.matched_gt, at::tensor({0, -1, -1, -2, -1, -1}, at::kLong)));
}

TEST(Atss, EveryObjectGetsPositivesOnRetinaNetAnchors) {
  // Properties of the rule on real anchors (128 x 160 input, 5 levels, 9 anchors per location):
  // each object of 16..90 px gets at least one positive, at most top_k x levels = 45, all with
  // centres inside the box.
  anchors::AnchorGenerator gen;
  const std::vector<anchors::Size2> sizes = {{16, 20}, {8, 10}, {4, 5}, {2, 3}, {1, 2}};
  const at::Tensor a = gen.anchors({128, 160}, sizes, at::kCPU);
  const at::Tensor gt =
      at::tensor({10.f, 10.f, 26.f, 30.f, 40.f, 20.f, 130.f, 110.f, 100.f, 60.f, 140.f, 90.f})
          .view({3, 4});
  const AssignResult r =
      assign_atss(a, gen.num_anchors_per_level(sizes), {gt, at::tensor({0, 1, 2}, at::kLong), {}});
  const at::Tensor cx = (a.select(1, 0) + a.select(1, 2)) / 2;
  const at::Tensor cy = (a.select(1, 1) + a.select(1, 3)) / 2;
  for (int64_t g = 0; g < 3; ++g) {
    const at::Tensor mine = r.matched_gt == g;
    const int64_t n = mine.sum().item<int64_t>();
    EXPECT_GE(n, 1) << "gt " << g;
    EXPECT_LE(n, 45) << "gt " << g;
    const at::Tensor x = cx.masked_select(mine), y = cy.masked_select(mine);
    const at::Tensor box = gt[g];
    EXPECT_TRUE(((x > box[0]) & (x < box[2]) & (y > box[1]) & (y < box[3])).all().item<bool>());
    EXPECT_TRUE(at::equal(r.labels.masked_select(mine), at::full({n}, g, at::kLong)));
  }
  EXPECT_EQ((r.matched_gt == kIgnore).sum().item<int64_t>(), 0);  // no crowd: no ignores
}

TEST(Atss, LevelCountsMustCoverAllAnchors) {
  const at::Tensor gt = at::tensor({0.f, 0.f, 10.f, 10.f}).view({1, 4});
  EXPECT_THROW(assign_atss(atss_anchors(), {4, 1}, {gt, at::tensor({0}, at::kLong), {}}), Error);
}

}  // namespace
}  // namespace focaldet::assign
