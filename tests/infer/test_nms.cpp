// Our NMS against torchvision.ops.nms / batched_nms (tests/infer/oracle.py) and by hand.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>

#include "common/error.h"
#include "infer/nms.h"
#include "infer/postprocess.h"
#include "support/oracle.h"

namespace focaldet::infer {
namespace {

namespace t = focaldet::test;

// Clustered random boxes, so that many pairs overlap around the threshold.
at::Tensor clustered_boxes(int64_t n) {
  const at::Tensor centres =
      (at::randint(0, 6, {n, 2}, at::kLong).to(at::kFloat) * 40) + at::randn({n, 2}) * 6;
  const at::Tensor half = at::rand({n, 2}) * 15 + 5;
  return at::cat({centres - half, centres + half}, 1);
}

void expect_nms_parity(int64_t n, double thresh, uint64_t seed) {
  FOCALDET_REQUIRE_PYTHON("torch", "torchvision");
  at::manual_seed(seed);
  const at::Tensor boxes = clustered_boxes(n);
  const at::Tensor scores = at::rand({n});  // continuous: no ties, so the order is defined
  const at::Tensor classes = at::randint(0, 4, {n}, at::kLong);
  const std::string dir = t::make_temp_dir("nms");
  t::save_tensors(dir + "/in.pt", {{"boxes", boxes},
                                   {"scores", scores},
                                   {"classes", classes},
                                   {"thresh", at::tensor(thresh, at::kDouble)}});
  std::string log;
  ASSERT_EQ(t::run_python(t::source_path("tests/infer/oracle.py"),
                          {"nms", dir + "/in.pt", dir + "/out.pt"}, &log),
            0)
      << log;
  auto ref = t::load_tensors(dir + "/out.pt");
  const at::Tensor keep = nms(boxes, scores, thresh);
  EXPECT_TRUE(at::equal(keep, ref["keep"])) << keep.sizes() << " vs " << ref["keep"].sizes();
  const at::Tensor keep_b = batched_nms(boxes, scores, classes, thresh);
  EXPECT_TRUE(at::equal(keep_b, ref["keep_batched"]))
      << keep_b.sizes() << " vs " << ref["keep_batched"].sizes();
}

TEST(Nms, MatchesTorchvisionOnRandomBoxes) { expect_nms_parity(300, 0.5, 11); }

// > 1000 boxes takes torchvision's per-class ("vanilla") batched path instead of the
// coordinate-offset trick; both must agree with ours.
TEST(Nms, MatchesTorchvisionOnManyBoxesAndAnotherThreshold) { expect_nms_parity(1500, 0.3, 12); }

TEST(Nms, HandComputed) {
  // Box 1 lies inside box 0 (IoU 81/100 > 0.5); box 2 is disjoint from all.
  // IoU(0, 3) = 50/150 = 1/3 <= 0.5: kept.
  const at::Tensor boxes = at::tensor({0.f, 0.f, 10.f, 10.f,    //
                                       1.f, 1.f, 10.f, 10.f,    //
                                       20.f, 20.f, 30.f, 30.f,  //
                                       5.f, 0.f, 15.f, 10.f})
                               .view({4, 4});
  const at::Tensor scores = at::tensor({0.9f, 0.8f, 0.7f, 0.95f});
  // Box 3 (0.95) first: IoU(3, 0) = 1/3 keeps 0; IoU(3, 1) = 45/(100+81-45) = 0.33 keeps 1 for
  // now; then box 0 suppresses box 1 (81/100); box 2 is kept.
  EXPECT_TRUE(at::equal(nms(boxes, scores, 0.5), at::tensor({3, 0, 2}, at::kLong)));
  // With classes, box 0 and box 1 in different classes: nothing suppresses box 1.
  const at::Tensor classes = at::tensor({0, 1, 0, 0}, at::kLong);
  EXPECT_TRUE(
      at::equal(batched_nms(boxes, scores, classes, 0.5), at::tensor({3, 0, 1, 2}, at::kLong)));
}

TEST(Nms, EmptyInputGivesEmptyOutput) {
  EXPECT_EQ(nms(at::zeros({0, 4}), at::zeros({0}), 0.5).numel(), 0);
}

// The kept indices are on the boxes' device even when there are none (an image without a
// score above the threshold on a CUDA model: postprocess indexes the boxes with them). The
// meta device stands in for a GPU on a machine without one; a non-empty input would need data.
TEST(Nms, EmptyInputGivesIndicesOnTheBoxesDevice) {
  const auto meta = at::TensorOptions().device(at::kMeta);
  const at::Tensor keep = nms(at::zeros({0, 4}, meta), at::zeros({0}, meta), 0.5);
  EXPECT_EQ(keep.device(), at::Device(at::kMeta));
  EXPECT_EQ(keep.scalar_type(), at::kLong);
  const at::Tensor kept = batched_nms(at::zeros({0, 4}, meta), at::zeros({0}, meta),
                                      at::zeros({0}, meta.dtype(at::kLong)), 0.5);
  EXPECT_EQ(kept.device(), at::Device(at::kMeta));
}

TEST(Postprocess, RejectsNonPositiveLimits) {
  const at::Tensor logits = at::zeros({1, 9, 2}), deltas = at::zeros({1, 9, 4});
  const at::Tensor anchors = at::zeros({9, 4});
  for (auto [topk, max_dets] : {std::pair<int64_t, int64_t>{0, 100}, {1000, -1}}) {
    PostprocessOptions o;
    o.topk_per_level = topk;
    o.max_detections = max_dets;
    try {
      postprocess(logits, deltas, anchors, {9}, {ImageInfo{}}, o);
      ADD_FAILURE() << "no error for topk " << topk << ", max_detections " << max_dets;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("must be > 0, got " + std::to_string(topk) + " and " +
                                           std::to_string(max_dets)),
                std::string::npos)
          << e.what();
    }
  }
}

TEST(Nms, RejectsMismatchedScores) {
  EXPECT_THROW(nms(at::zeros({3, 4}), at::zeros({2}), 0.5), Error);
}

}  // namespace
}  // namespace focaldet::infer
