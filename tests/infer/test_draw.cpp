// draw_detections: boxes land where the detections are, in their class's colour, and
// detections under the score threshold are left out.
#include <gtest/gtest.h>

#include <opencv2/core.hpp>

#include "common/error.h"
#include "infer/draw.h"

namespace focaldet::infer {
namespace {

eval::Detection box(double x, double y, double w, double h, double score) {
  eval::Detection d;
  d.x = x;
  d.y = y;
  d.w = w;
  d.h = h;
  d.score = score;
  return d;
}

bool is_white(const cv::Mat& image, int x, int y) {
  return image.at<cv::Vec3b>(y, x) == cv::Vec3b(255, 255, 255);
}

TEST(DrawDetections, DrawsBoxesAboveTheThresholdOnly) {
  cv::Mat image(200, 300, CV_8UC3, cv::Scalar(255, 255, 255));
  const std::vector<eval::Detection> dets = {box(50, 60, 100, 80, 0.9), box(200, 20, 50, 50, 0.1)};
  draw_detections(image, dets, {0, 1}, {"cell", "other"}, /*min_score=*/0.3);
  // The kept box's edges are painted, its inside and the dropped box's edges are not.
  EXPECT_FALSE(is_white(image, 50, 100));   // left edge
  EXPECT_FALSE(is_white(image, 150, 100));  // right edge
  EXPECT_FALSE(is_white(image, 100, 140));  // bottom edge
  EXPECT_TRUE(is_white(image, 100, 100));   // inside
  EXPECT_TRUE(is_white(image, 200, 45));    // the low-scoring box's left edge
  EXPECT_TRUE(is_white(image, 250, 45));
}

TEST(DrawDetections, ClassesGetDifferentColours) {
  cv::Mat image(100, 200, CV_8UC3, cv::Scalar(255, 255, 255));
  draw_detections(image, {box(10, 40, 40, 40, 0.9), box(110, 40, 40, 40, 0.9)}, {0, 1},
                  {"a", "b"}, 0.0);
  EXPECT_NE(image.at<cv::Vec3b>(60, 10), image.at<cv::Vec3b>(60, 110));
}

TEST(DrawDetections, MismatchedInputsAreErrors) {
  cv::Mat image(10, 10, CV_8UC3);
  EXPECT_THROW(draw_detections(image, {box(0, 0, 1, 1, 1)}, {}, {"a"}, 0), Error);
  EXPECT_THROW(draw_detections(image, {box(0, 0, 1, 1, 1)}, {3}, {"a"}, 0), Error);
}

}  // namespace
}  // namespace focaldet::infer
