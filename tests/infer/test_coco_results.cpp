// to_coco_results by hand: xywh from corners, category ids from the contiguous index, flips
// undone about the original width (the loader's x -> W - x), errors for unknown labels.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <vector>

#include "common/error.h"
#include "infer/coco_results.h"

namespace focaldet::infer {
namespace {

// Non-contiguous ids, as COCO's: class 0 is category 3, class 1 is 17, class 2 is 90.
const std::vector<int64_t> kCategories = {3, 17, 90};

Detections two_detections() {
  Detections d;
  d.boxes = at::tensor({10.f, 20.f, 50.f, 80.f, 0.f, 0.5f, 5.f, 4.f}).view({2, 4});
  d.scores = at::tensor({0.75f, 0.25f});  // exact in float, so the doubles below are exact
  d.labels = at::tensor({1, 2}, at::kLong);
  return d;
}

// Coordinates here are small multiples of 1/2: exact in float and double, so the expected
// values are exact too; the tolerance only says "no rounding beyond float's".
void expect_detection(const eval::Detection& got, int64_t image_id, int64_t category, double x,
                      double y, double w, double h, double score) {
  constexpr double kTol = 1e-9;
  EXPECT_EQ(got.image_id, image_id);
  EXPECT_EQ(got.category_id, category);
  EXPECT_NEAR(got.x, x, kTol);
  EXPECT_NEAR(got.y, y, kTol);
  EXPECT_NEAR(got.w, w, kTol);
  EXPECT_NEAR(got.h, h, kTol);
  EXPECT_NEAR(got.score, score, kTol);
}

TEST(CocoResults, CornersBecomeXywhWithCategoryIds) {
  const std::vector<eval::Detection> r =
      to_coco_results(two_detections(), 42, kCategories, /*flipped=*/false, 640);
  ASSERT_EQ(r.size(), 2u);
  // [10, 20, 50, 80] -> x 10, y 20, w 40, h 60; class 1 -> category 17.
  expect_detection(r[0], 42, 17, 10, 20, 40, 60, 0.75);
  // [0, 0.5, 5, 4] -> x 0, y 0.5, w 5, h 3.5; class 2 -> category 90.
  expect_detection(r[1], 42, 90, 0, 0.5, 5, 3.5, 0.25);
}

TEST(CocoResults, FlippedBoxesAreMirroredBackAboutTheOriginalWidth) {
  // W = 100: [10, 20, 50, 80] seen flipped is the original [100 - 50, 20, 100 - 10, 80]
  // = [50, 20, 90, 80] -> x 50, w 40; y and h unchanged.
  const std::vector<eval::Detection> r =
      to_coco_results(two_detections(), 7, kCategories, /*flipped=*/true, 100);
  ASSERT_EQ(r.size(), 2u);
  expect_detection(r[0], 7, 17, 50, 20, 40, 60, 0.75);
  // [0, 0.5, 5, 4] -> [95, 0.5, 100, 4].
  expect_detection(r[1], 7, 90, 95, 0.5, 5, 3.5, 0.25);
}

TEST(CocoResults, FlipThenUnflipIsTheOriginalBox) {
  // The loader mirrors an original box [x1, y1, x2, y2] to [W - x2, y1, W - x1, y2]; the
  // detection of that box, converted with flipped = true, is the original again.
  const double w = 640, x1 = 100.5, y1 = 30, x2 = 220.25, y2 = 90;
  Detections d;
  d.boxes = at::tensor({static_cast<float>(w - x2), static_cast<float>(y1),
                        static_cast<float>(w - x1), static_cast<float>(y2)})
                .view({1, 4});
  d.scores = at::tensor({0.5f});
  d.labels = at::tensor({0}, at::kLong);
  const std::vector<eval::Detection> r = to_coco_results(d, 1, kCategories, true, 640);
  ASSERT_EQ(r.size(), 1u);
  expect_detection(r[0], 1, 3, x1, y1, x2 - x1, y2 - y1, 0.5);
}

TEST(CocoResults, NoDetectionsGiveNoEntries) {
  Detections empty;
  empty.boxes = at::zeros({0, 4});
  empty.scores = at::zeros({0});
  empty.labels = at::zeros({0}, at::kLong);
  EXPECT_TRUE(to_coco_results(empty, 1, kCategories, false, 640).empty());
  EXPECT_TRUE(to_coco_results(Detections{}, 1, kCategories, false, 640).empty());
}

TEST(CocoResults, LabelWithoutCategoryIsAnError) {
  Detections d = two_detections();
  d.labels = at::tensor({1, 3}, at::kLong);  // 3 categories: index 3 has none
  EXPECT_THROW(to_coco_results(d, 1, kCategories, false, 640), Error);
}

}  // namespace
}  // namespace focaldet::infer
