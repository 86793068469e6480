// MaxIoU assignment against torchvision's det_utils.Matcher(0.5, 0.4, allow_low_quality_matches)
// (tests/assign/oracle.py), and crowd regions by hand.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>

#include "anchors/anchor_generator.h"
#include "assign/max_iou.h"
#include "common/error.h"
#include "support/oracle.h"

namespace focaldet::assign {
namespace {

namespace t = focaldet::test;

TEST(MaxIoU, MatchesTorchvisionMatcher) {
  FOCALDET_REQUIRE_PYTHON("torch", "torchvision");
  at::manual_seed(21);
  // RetinaNet's anchors on a 128 x 160 image and 12 random objects of many sizes.
  anchors::AnchorGenerator gen;
  const at::Tensor anchors =
      gen.anchors({128, 160}, {{16, 20}, {8, 10}, {4, 5}, {2, 3}, {1, 2}}, at::kCPU);
  const int64_t g = 12;
  const at::Tensor xy = at::rand({g, 2}) * at::tensor({140.f, 110.f});
  const at::Tensor wh = at::exp(at::rand({g, 2}) * 4.5) + 4;  // 5 .. 94 px
  const at::Tensor gt = at::cat({xy, xy + wh}, 1);
  const at::Tensor labels = at::randint(0, 3, {g}, at::kLong);
  const std::string dir = t::make_temp_dir("matcher");
  t::save_tensors(dir + "/in.pt", {{"gt", gt}, {"anchors", anchors}});
  std::string log;
  ASSERT_EQ(t::run_python(t::source_path("tests/assign/oracle.py"),
                          {"matcher", dir + "/in.pt", dir + "/out.pt"}, &log),
            0)
      << log;
  const at::Tensor want = t::load_tensors(dir + "/out.pt")["matches"];
  const AssignResult got = assign_max_iou(anchors, {gt, labels, {}});
  ASSERT_EQ(got.matched_gt.sizes(), want.sizes());
  // The oracle's codes are ours: -1 below 0.4, -2 between, else the gt index.
  EXPECT_TRUE(at::equal(got.matched_gt, want))
      << (got.matched_gt != want).sum().item<int64_t>() << " anchors differ";
  EXPECT_GT(got.num_pos(), g);  // a real test: positives and ignores both occur
  EXPECT_GT((want == kIgnore).sum().item<int64_t>(), 0);
  const at::Tensor pos = want >= 0;
  EXPECT_TRUE(
      at::equal(got.labels.masked_select(pos), labels.index_select(0, want.masked_select(pos))));
  EXPECT_TRUE(at::equal(got.labels.masked_select(pos.logical_not()),
                        want.masked_select(pos.logical_not())));
}

// Anchors for the hand-computed cases, each 10 x 10.
at::Tensor hand_anchors() {
  return at::tensor({0.f, 0.f, 10.f, 10.f,    // 0
                     5.f, 0.f, 15.f, 10.f,    // 1: IoU 1/3 with anchor 0's square
                     40.f, 40.f, 50.f, 50.f,  // 2
                     100.f, 100.f, 110.f, 110.f})
      .view({4, 4});
}

TEST(MaxIoU, ThresholdsByHand) {
  // gt 0 = anchor 0 (IoU 1, positive); anchor 1 has IoU 50/150 = 1/3 < 0.4 with it: background.
  // gt 1 = [40, 40, 50, 56] vs anchor 2: IoU 100/160 = 0.625: positive.
  const at::Tensor gt = at::tensor({0.f, 0.f, 10.f, 10.f, 40.f, 40.f, 50.f, 56.f}).view({2, 4});
  const AssignResult r = assign_max_iou(hand_anchors(), {gt, at::tensor({3, 5}, at::kLong), {}});
  EXPECT_TRUE(at::equal(r.matched_gt, at::tensor({0, -1, 1, -1}, at::kLong)));
  EXPECT_TRUE(at::equal(r.labels, at::tensor({3, -1, 5, -1}, at::kLong)));
}

TEST(MaxIoU, BetweenThresholdsIsIgnoredAndLowQualityKept) {
  // gt [0, 0, 10, 14]: anchor 0 IoU 100/140 = 0.714 (positive), anchor 1 IoU 50/190 = 0.26.
  // gt [40, 40, 50, 62]: anchor 2 IoU 100/220 = 0.4545, between the thresholds, but it is this
  // gt's best anchor: kept as positive (low-quality match).
  const at::Tensor gt = at::tensor({0.f, 0.f, 10.f, 14.f, 40.f, 40.f, 50.f, 62.f}).view({2, 4});
  const at::Tensor labels = at::tensor({0, 1}, at::kLong);
  EXPECT_TRUE(at::equal(assign_max_iou(hand_anchors(), {gt, labels, {}}).matched_gt,
                        at::tensor({0, -1, 1, -1}, at::kLong)));
  MaxIoUOptions strict;
  strict.low_quality_matches = false;
  EXPECT_TRUE(at::equal(assign_max_iou(hand_anchors(), {gt, labels, {}}, strict).matched_gt,
                        at::tensor({0, -1, -2, -1}, at::kLong)));
}

TEST(MaxIoU, CrowdRegionMakesOverlappingBackgroundIgnored) {
  // gt 0: an object on anchor 0. A crowd region [8, 0, 45, 45] that overlaps anchors 0, 1 and
  // 2 but not 3. Anchor 0 stays positive (its object is not the crowd); anchors 1 and 2 would
  // be background and become ignored; anchor 3 stays background. The crowd region is never a
  // match, even for the anchor it overlaps most.
  const at::Tensor gt = at::tensor({0.f, 0.f, 10.f, 10.f}).view({1, 4});
  const at::Tensor crowd = at::tensor({8.f, 0.f, 45.f, 45.f}).view({1, 4});
  const GroundTruth truth{gt, at::tensor({2}, at::kLong), crowd};
  const AssignResult r = assign_max_iou(hand_anchors(), truth);
  EXPECT_TRUE(at::equal(r.matched_gt, at::tensor({0, -2, -2, -1}, at::kLong)));
  EXPECT_TRUE(at::equal(r.labels, at::tensor({2, -2, -2, -1}, at::kLong)));
  // With a threshold on the covered fraction: anchor 2 has 25/100 inside, anchor 1 has 70/100.
  MaxIoUOptions o;
  o.crowd_ioa = 0.5;
  EXPECT_TRUE(at::equal(assign_max_iou(hand_anchors(), truth, o).matched_gt,
                        at::tensor({0, -2, -1, -1}, at::kLong)));
}

TEST(MaxIoU, NoObjectsMeansAllBackground) {
  const AssignResult r =
      assign_max_iou(hand_anchors(), {at::zeros({0, 4}), at::zeros({0}, at::kLong), {}});
  EXPECT_TRUE(at::equal(r.labels, at::full({4}, -1, at::kLong)));
}

TEST(MaxIoU, OnlyCrowdMeansBackgroundAndIgnored) {
  // No objects, the crowd region of the test above: anchors 0, 1, 2 lie partly inside it.
  const at::Tensor crowd = at::tensor({8.f, 0.f, 45.f, 45.f}).view({1, 4});
  const AssignResult r =
      assign_max_iou(hand_anchors(), {at::zeros({0, 4}), at::zeros({0}, at::kLong), crowd});
  EXPECT_TRUE(at::equal(r.matched_gt, at::tensor({-2, -2, -2, -1}, at::kLong)));
  EXPECT_TRUE(at::equal(r.labels, at::tensor({-2, -2, -2, -1}, at::kLong)));
}

TEST(MaxIoU, EmptyCrowdTensorOfAnyShapeIsNone) {
  // A batch without crowd regions may carry [0, 4] or [0]; both mean none.
  const at::Tensor gt = at::tensor({0.f, 0.f, 10.f, 10.f}).view({1, 4});
  const at::Tensor labels = at::tensor({1}, at::kLong);
  const at::Tensor want = at::tensor({0, -1, -1, -1}, at::kLong);
  EXPECT_TRUE(
      at::equal(assign_max_iou(hand_anchors(), {gt, labels, at::zeros({0, 4})}).matched_gt, want));
  EXPECT_TRUE(
      at::equal(assign_max_iou(hand_anchors(), {gt, labels, at::zeros({0})}).matched_gt, want));
}

TEST(MaxIoU, RejectsCrowdBoxesNotKBy4) {
  const at::Tensor gt = at::tensor({0.f, 0.f, 10.f, 10.f}).view({1, 4});
  EXPECT_THROW(assign_max_iou(hand_anchors(), {gt, at::tensor({1}, at::kLong), at::zeros({2, 3})}),
               Error);
}

TEST(MaxIoU, RejectsMismatchedLabels) {
  EXPECT_THROW(assign_max_iou(hand_anchors(), {at::zeros({2, 4}), at::zeros({3}, at::kLong), {}}),
               Error);
}

}  // namespace
}  // namespace focaldet::assign
