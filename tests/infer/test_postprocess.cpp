// postprocess with a softmax-focal head (PostprocessOptions::softmax_background): the background
// is the last of C+1 columns, as in loss/softmax_focal.h; scores are the softmax without it.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "common/error.h"
#include "infer/postprocess.h"

namespace focaldet::infer {
namespace {

// `n` 10 x 10 anchors in a row, 20 px apart: no two overlap, so NMS keeps every one.
at::Tensor row_of_anchors(int64_t n) {
  const at::Tensor x = at::arange(n, at::kFloat) * 20;
  const at::Tensor y = at::zeros({n});
  return at::stack({x, y, x + 10, y + 10}, 1);
}

TEST(PostprocessSoftmax, BackgroundIsTheLastColumnByHand) {
  // C = 2. Anchor 0: logits (ln 2, 0, 0) -> softmax (1/2, 1/4, 1/4): class 0 at 0.5 and class 1
  // at 0.25. Anchor 1: (0, 0, ln 98) -> (0.01, 0.01, 0.98): background, no detection (0.01 is
  // below 0.05). Were the background column 0, anchor 1 would give class 1 at 0.98.
  const at::Tensor logits =
      at::tensor({std::log(2.0f), 0.f, 0.f, 0.f, 0.f, std::log(98.0f)}).view({1, 2, 3});
  const at::Tensor anchors = row_of_anchors(2);
  PostprocessOptions o;
  o.softmax_background = true;
  const std::vector<Detections> d =
      postprocess(logits, at::zeros({1, 2, 4}), anchors, {2}, {ImageInfo{{100, 100}, 1.0}}, o);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_TRUE(at::equal(d[0].labels, at::tensor({0, 1}, at::kLong)));
  // float softmax: a few ulps from the exact fractions.
  EXPECT_TRUE(at::allclose(d[0].scores, at::tensor({0.5f, 0.25f}), /*rtol=*/1e-6, /*atol=*/1e-7))
      << d[0].scores;
  // Zero deltas decode to the anchor itself.
  const at::Tensor want_boxes = anchors[0].unsqueeze(0).expand({2, 4});
  EXPECT_TRUE(at::allclose(d[0].boxes, want_boxes, /*rtol=*/0, /*atol=*/1e-4)) << d[0].boxes;
}

TEST(PostprocessSoftmax, EqualsSigmoidPathFedTheSameProbabilities) {
  // Two images, two levels, C = 3, random logits and deltas on overlapping random anchors (so
  // NMS and the top-k both act). The sigmoid path gets logit(p) of the softmax probabilities
  // without background, so both paths see the same scores up to float rounding and must give
  // the same detections.
  at::manual_seed(5);
  const int64_t b = 2, a = 50, c = 3;
  const at::Tensor logits = at::randn({b, a, c + 1}) * 2;
  const at::Tensor deltas = at::randn({b, a, 4}) * 0.1;
  const at::Tensor xy = at::rand({a, 2}) * 60;
  const at::Tensor anchors = at::cat({xy, xy + 16 + at::rand({a, 2}) * 16}, 1);
  const std::vector<ImageInfo> images = {{{100, 100}, 1.0}, {{100, 100}, 2.0}};
  const at::Tensor p = at::softmax(logits.to(at::kDouble), 2).slice(2, 0, c);
  const at::Tensor sigmoid_logits = (at::log(p) - at::log1p(-p)).to(at::kFloat);

  PostprocessOptions soft;
  soft.softmax_background = true;
  soft.topk_per_level = 20;
  PostprocessOptions sig = soft;
  sig.softmax_background = false;
  const std::vector<Detections> got = postprocess(logits, deltas, anchors, {30, 20}, images, soft);
  const std::vector<Detections> want =
      postprocess(sigmoid_logits, deltas, anchors, {30, 20}, images, sig);
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    ASSERT_GT(want[i].labels.size(0), 5) << "image " << i << ": too few detections to compare";
    ASSERT_TRUE(at::equal(got[i].labels, want[i].labels)) << "image " << i;
    EXPECT_TRUE(at::allclose(got[i].scores, want[i].scores, /*rtol=*/1e-5, /*atol=*/1e-7))
        << "image " << i;
    EXPECT_TRUE(at::allclose(got[i].boxes, want[i].boxes, /*rtol=*/0, /*atol=*/1e-4))
        << "image " << i;
  }
}

TEST(PostprocessSoftmax, NeedsABackgroundColumn) {
  PostprocessOptions o;
  o.softmax_background = true;
  EXPECT_THROW(postprocess(at::zeros({1, 2, 1}), at::zeros({1, 2, 4}), row_of_anchors(2), {2},
                           {ImageInfo{}}, o),
               Error);
}

}  // namespace
}  // namespace focaldet::infer
