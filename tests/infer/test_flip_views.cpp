// Flip test-time augmentation's parts, by hand: mirroring each image inside its padded batch,
// mirroring detections back into the original image, and merging the views.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "common/error.h"
#include "infer/flip_views.h"

namespace focaldet::infer {
namespace {

TEST(FlipViews, ModesListTheirViews) {
  EXPECT_EQ(flip_views("none").size(), 1u);
  EXPECT_TRUE(flip_views("none")[0].identity());
  const auto h = flip_views("hflip");
  ASSERT_EQ(h.size(), 2u);
  EXPECT_TRUE(h[1].horizontal && !h[1].vertical);
  const auto hv = flip_views("hvflip");
  ASSERT_EQ(hv.size(), 4u);
  EXPECT_TRUE(hv[3].horizontal && hv[3].vertical);
  EXPECT_THROW(flip_views("rotate"), Error);
}

TEST(FlipViews, MirrorsEachImageInsideItsOwnSize) {
  // Image 0 fills its 3 x 4 batch; image 1 is 2 x 3 in the corner, the rest padding (-1).
  at::Tensor images = at::full({2, 1, 3, 4}, -1.f);
  images[0][0].copy_(at::arange(12, at::kFloat).view({3, 4}));
  images[1][0].narrow(0, 0, 2).narrow(1, 0, 3).copy_(at::arange(6, at::kFloat).view({2, 3}));
  const std::vector<anchors::Size2> sizes = {{3, 4}, {2, 3}};
  const at::Tensor h = flip_images(images, sizes, {true, false});
  EXPECT_TRUE(at::equal(h[0][0][0], at::tensor({3.f, 2.f, 1.f, 0.f})));
  EXPECT_TRUE(at::equal(h[1][0], at::tensor({2.f, 1.f, 0.f, -1.f, 5.f, 4.f, 3.f, -1.f, -1.f,
                                             -1.f, -1.f, -1.f})
                                     .view({3, 4})));
  const at::Tensor v = flip_images(images, sizes, {false, true});
  EXPECT_TRUE(at::equal(v[0][0][0], at::tensor({8.f, 9.f, 10.f, 11.f})));
  EXPECT_TRUE(at::equal(v[1][0][0], at::tensor({3.f, 4.f, 5.f, -1.f})));
  const at::Tensor hv = flip_images(images, sizes, {true, true});
  EXPECT_TRUE(at::equal(hv[1][0][0], at::tensor({5.f, 4.f, 3.f, -1.f})));
  EXPECT_TRUE(at::equal(hv[1][0][2], at::full({4}, -1.f)));
  // The batch itself is untouched, and the identity view is the batch.
  EXPECT_EQ(images[1][0][0][0].item<float>(), 0.f);
  EXPECT_TRUE(flip_images(images, sizes, {}).is_same(images));
}

TEST(FlipViews, UnflipMirrorsBoxesInTheOriginalImage) {
  // A 640 x 480 image resized by 0.5 to 320 x 240: boxes are in original pixels.
  const ImageInfo image{{240, 320}, 0.5};
  Detections d{at::tensor({10.f, 20.f, 110.f, 220.f}).view({1, 4}), at::tensor({0.9f}),
               at::tensor({int64_t{2}})};
  EXPECT_TRUE(at::allclose(unflip(d, image, {true, false}).boxes,
                           at::tensor({530.f, 20.f, 630.f, 220.f}).view({1, 4})));
  EXPECT_TRUE(at::allclose(unflip(d, image, {false, true}).boxes,
                           at::tensor({10.f, 260.f, 110.f, 460.f}).view({1, 4})));
  EXPECT_TRUE(at::allclose(unflip(d, image, {true, true}).boxes,
                           at::tensor({530.f, 260.f, 630.f, 460.f}).view({1, 4})));
  EXPECT_TRUE(at::equal(unflip(d, image, {true, true}).labels, d.labels));
}

TEST(FlipViews, MergeKeepsTheBestOfOverlappingBoxesPerClass) {
  const Detections a{at::tensor({0.f, 0.f, 10.f, 10.f, 50.f, 50.f, 60.f, 60.f}).view({2, 4}),
                     at::tensor({0.6f, 0.3f}), at::tensor({int64_t{0}, int64_t{1}})};
  // Its first box overlaps a's first (IoU 0.9) with a higher score, same class: it wins; its
  // second box overlaps a's second but is another class: both stay.
  const Detections b{at::tensor({0.f, 0.f, 10.f, 9.f, 50.f, 50.f, 60.f, 60.f}).view({2, 4}),
                     at::tensor({0.8f, 0.2f}), at::tensor({int64_t{0}, int64_t{2}})};
  const Detections m = merge_views({a, b}, 0.5, 100);
  EXPECT_TRUE(at::allclose(m.scores, at::tensor({0.8f, 0.3f, 0.2f})));
  EXPECT_TRUE(at::equal(m.labels, at::tensor({int64_t{0}, int64_t{1}, int64_t{2}})));
  EXPECT_EQ(m.boxes[0][3].item<float>(), 9.f);
  EXPECT_EQ(merge_views({a, b}, 0.5, 2).scores.size(0), 2);
}

}  // namespace
}  // namespace focaldet::infer
