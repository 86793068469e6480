// Transforms and collation: sizes, boxes and pixels, with expected values worked out by hand.
#include <gtest/gtest.h>
#include <torch/types.h>

#include <cmath>
#include <opencv2/core.hpp>

#include "common/error.h"
#include "data/collate.h"
#include "data/transforms.h"

namespace focaldet::data {
namespace {

// ImageNet statistics, written out again so that a wrong default in the library shows.
constexpr double kMean[3] = {0.485, 0.456, 0.406};
constexpr double kStd[3] = {0.229, 0.224, 0.225};
double normalized(double v, int channel) { return (v / 255.0 - kMean[channel]) / kStd[channel]; }

// float32 output of values computed in float: a few ulps of a value of magnitude ~2.
constexpr double kTol = 1e-5;

void expect_box(const Box& b, double x1, double y1, double x2, double y2) {
  EXPECT_NEAR(b.x1, x1, 1e-4);
  EXPECT_NEAR(b.y1, y1, 1e-4);
  EXPECT_NEAR(b.x2, x2, 1e-4);
  EXPECT_NEAR(b.y2, y2, 1e-4);
}

// Value of output channel c (RGB) at (y, x) of a [3, H, W] block.
float at(const std::vector<float>& out, int height, int width, int c, int y, int x) {
  return out[(static_cast<size_t>(c) * height + y) * width + x];
}

TEST(ResizedSize, ShorterSideOfLandscapeImage) {
  // BCCD: 640x480 to shorter side 384: scale 384/480 = 0.8, 512x384.
  const ResizedSize r = resized_size(640, 480, 384, 1333);
  EXPECT_EQ(r.width, 512);
  EXPECT_EQ(r.height, 384);
  EXPECT_DOUBLE_EQ(r.scale, 0.8);
}

TEST(ResizedSize, ShorterSideOfPortraitImage) {
  // 300x600 to 400, no cap: scale 4/3, 400x800.
  const ResizedSize r = resized_size(300, 600, 400, 0);
  EXPECT_EQ(r.width, 400);
  EXPECT_EQ(r.height, 800);
  EXPECT_NEAR(r.scale, 4.0 / 3.0, 1e-12);
}

TEST(ResizedSize, LongerSideCapWins) {
  // 1000x200 to 800 would be 4000 wide; the cap 1333 gives scale 1.333, height 266.6 -> 267.
  const ResizedSize r = resized_size(1000, 200, 800, 1333);
  EXPECT_NEAR(r.scale, 1.333, 1e-12);
  EXPECT_EQ(r.width, 1333);
  EXPECT_EQ(r.height, 267);
}

TEST(ResizedSize, RoundsToNearest) {
  // 333x500 to 100: scale 100/333, height 500 * 100 / 333 = 150.15 -> 150.
  const ResizedSize r = resized_size(333, 500, 100, 1000);
  EXPECT_EQ(r.width, 100);
  EXPECT_EQ(r.height, 150);
  // 3x5 to 2: height 3.33 -> 3; 5x7 to 3: height 4.2 -> 4; 2x3 to 3: height 4.5 -> 5.
  EXPECT_EQ(resized_size(3, 5, 2, 0).height, 3);
  EXPECT_EQ(resized_size(5, 7, 3, 0).height, 4);
  EXPECT_EQ(resized_size(2, 3, 3, 0).height, 5);
  // The same for the width of landscape images: 3.33 -> 3, 4.2 -> 4, 4.5 -> 5.
  EXPECT_EQ(resized_size(5, 3, 2, 0).width, 3);
  EXPECT_EQ(resized_size(7, 5, 3, 0).width, 4);
  EXPECT_EQ(resized_size(3, 2, 3, 0).width, 5);
}

TEST(ResizedSize, RejectsEmptyImage) { EXPECT_THROW(resized_size(0, 10, 800, 1333), Error); }

TEST(Boxes, ScaleMultipliesEveryCoordinate) {
  std::vector<Box> boxes = {{67, 314, 286, 480}};
  scale_boxes(boxes, 0.8);
  expect_box(boxes[0], 53.6, 251.2, 228.8, 384.0);
}

TEST(Boxes, FlipMirrorsAndSwapsEdges) {
  // In a 100-pixel-wide image, columns 10..29 go to 70..89.
  std::vector<Box> boxes = {{10, 20, 30, 40}, {0, 0, 100, 5}};
  flip_boxes(boxes, 100);
  expect_box(boxes[0], 70, 20, 90, 40);
  expect_box(boxes[1], 0, 0, 100, 5);
}

cv::Mat image_with_rectangle();

TEST(Boxes, VerticalFlipMirrorsRowsAndSwapsEdges) {
  // In a 50-pixel-high image, rows 20..39 go to 10..29.
  std::vector<Box> boxes = {{10, 20, 30, 40}};
  vflip_boxes(boxes, 50);
  expect_box(boxes[0], 10, 10, 30, 30);
}

TEST(WriteNormalized, VerticallyFlippedPixelsStayUnderTheBox) {
  TransformOptions opt;
  TransformParams p;
  p.shorter_side = 20;  // no resize
  p.vflip = true;
  const TransformedSample s =
      transform_image(image_with_rectangle(), p, opt, {{5, 2, 15, 8}}, {0}, {});
  expect_box(s.boxes[0], 5, 12, 15, 18);  // rows 2..7 of 20 go to 12..17
  std::vector<float> out(3 * 20 * 40);
  write_normalized(s, opt, out.data(), 20, 40);
  for (int c = 0; c < 3; ++c) {
    for (int y = 0; y < 20; ++y) {
      const bool inside = y >= 12 && y < 18;
      EXPECT_NEAR(at(out, 20, 40, c, y, 10), normalized(inside ? 255 : 0, c), kTol) << y;
    }
  }
}

TEST(DrawTransformParams, VerticalFlipIsDrawnLastAndOnlyWhenEnabled) {
  // Turning vertical flips on leaves every other draw as it was (old runs stay reproducible).
  TransformOptions off, on;
  off.shorter_sides = on.shorter_sides = {300, 400, 500};
  on.vflip_prob = 0.5;
  int flipped = 0;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    const TransformParams a = draw_transform_params(off, seed), b = draw_transform_params(on, seed);
    EXPECT_EQ(a.shorter_side, b.shorter_side);
    EXPECT_EQ(a.flip, b.flip);
    EXPECT_FALSE(a.vflip);
    flipped += b.vflip;
  }
  EXPECT_GT(flipped, 60);
  EXPECT_LT(flipped, 140);
}

TEST(TransformImage, ResizeThenFlipMovesBoxes) {
  // BCCD annotation 1: bbox [67, 314, 219, 166] in a 640x480 image, to shorter side 384
  // (scale 0.8, width 512), flipped: x1 = 512 - 228.8 = 283.2, x2 = 512 - 53.6 = 458.4.
  const cv::Mat image(480, 640, CV_8UC3, cv::Scalar(0, 0, 0));
  TransformOptions opt;
  TransformParams p;
  p.shorter_side = 384;
  p.flip = true;
  const TransformedSample s =
      transform_image(image, p, opt, {{67, 314, 286, 480}}, {1}, {{0, 0, 10, 10}});
  EXPECT_EQ(s.image.cols, 512);
  EXPECT_EQ(s.image.rows, 384);
  EXPECT_DOUBLE_EQ(s.scale, 0.8);
  EXPECT_EQ(s.original_width, 640);
  EXPECT_EQ(s.original_height, 480);
  ASSERT_EQ(s.boxes.size(), 1u);
  expect_box(s.boxes[0], 283.2, 251.2, 458.4, 384.0);
  ASSERT_EQ(s.labels.size(), 1u);
  EXPECT_EQ(s.labels[0], 1);
  // The crowd region moves the same way: [0, 10] * 0.8 = [0, 8], flipped to [504, 512].
  ASSERT_EQ(s.crowd_boxes.size(), 1u);
  expect_box(s.crowd_boxes[0], 504, 0, 512, 8);
}

// A black 40x20 image with a white rectangle over columns 5..14 and rows 2..7: box (5,2,15,8).
cv::Mat image_with_rectangle() {
  cv::Mat image(20, 40, CV_8UC3, cv::Scalar(0, 0, 0));
  image(cv::Rect(5, 2, 10, 6)).setTo(cv::Scalar(255, 255, 255));
  return image;
}

TEST(WriteNormalized, FlippedPixelsStayUnderFlippedBox) {
  TransformOptions opt;
  TransformParams p;
  p.shorter_side = 20;  // no resize
  p.flip = true;
  const TransformedSample s =
      transform_image(image_with_rectangle(), p, opt, {{5, 2, 15, 8}}, {0}, {});
  expect_box(s.boxes[0], 25, 2, 35, 8);
  std::vector<float> out(3 * 20 * 40);
  write_normalized(s, opt, out.data(), 20, 40);
  for (int c = 0; c < 3; ++c) {
    for (int x = 0; x < 40; ++x) {
      const bool inside = x >= 25 && x < 35;  // the flipped box's columns
      EXPECT_NEAR(at(out, 20, 40, c, 4, x), normalized(inside ? 255 : 0, c), kTol) << x;
    }
    EXPECT_NEAR(at(out, 20, 40, c, 1, 30), normalized(0, c), kTol);  // row above the box
    EXPECT_NEAR(at(out, 20, 40, c, 8, 30), normalized(0, c), kTol);  // row below the box
  }
}

TEST(WriteNormalized, ResizedPixelsStayUnderResizedBox) {
  // Doubled (shorter side 40): the box becomes (10, 4, 30, 16); its centre is white, pixels
  // well outside it black (bilinear blurs only the one-pixel rim).
  TransformOptions opt;
  TransformParams p;
  p.shorter_side = 40;
  const TransformedSample s =
      transform_image(image_with_rectangle(), p, opt, {{5, 2, 15, 8}}, {0}, {});
  expect_box(s.boxes[0], 10, 4, 30, 16);
  std::vector<float> out(3 * 40 * 80);
  write_normalized(s, opt, out.data(), 40, 80);
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(at(out, 40, 80, c, 10, 20), normalized(255, c), kTol);
    EXPECT_NEAR(at(out, 40, 80, c, 10, 12), normalized(255, c), kTol);
    EXPECT_NEAR(at(out, 40, 80, c, 10, 7), normalized(0, c), kTol);
    EXPECT_NEAR(at(out, 40, 80, c, 10, 33), normalized(0, c), kTol);
    EXPECT_NEAR(at(out, 40, 80, c, 19, 20), normalized(0, c), kTol);
  }
}

TEST(WriteNormalized, ConvertsBgrToRgbAndNormalises) {
  // One pixel stored B=20, G=50, R=100 (OpenCV order) must come out as R, G, B planes.
  cv::Mat image(1, 2, CV_8UC3);
  image.at<cv::Vec3b>(0, 0) = cv::Vec3b(20, 50, 100);
  image.at<cv::Vec3b>(0, 1) = cv::Vec3b(255, 0, 7);
  TransformedSample s;
  s.image = image;
  std::vector<float> out(3 * 1 * 2);
  write_normalized(s, TransformOptions{}, out.data(), 1, 2);
  EXPECT_NEAR(at(out, 1, 2, 0, 0, 0), normalized(100, 0), kTol);
  EXPECT_NEAR(at(out, 1, 2, 1, 0, 0), normalized(50, 1), kTol);
  EXPECT_NEAR(at(out, 1, 2, 2, 0, 0), normalized(20, 2), kTol);
  EXPECT_NEAR(at(out, 1, 2, 0, 0, 1), normalized(7, 0), kTol);
  EXPECT_NEAR(at(out, 1, 2, 2, 0, 1), normalized(255, 2), kTol);
  // (255 / 255 - 0.406) / 0.225 = 2.64, worked out by hand.
  EXPECT_NEAR(at(out, 1, 2, 2, 0, 1), 2.64, 1e-5);
}

TEST(WriteNormalized, PaddingIsZero) {
  cv::Mat image(2, 3, CV_8UC3, cv::Scalar(255, 255, 255));
  TransformedSample s;
  s.image = image;
  std::vector<float> out(3 * 4 * 5, 123.f);  // garbage that must be overwritten
  write_normalized(s, TransformOptions{}, out.data(), 4, 5);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 5; ++x) {
        const double want = (y < 2 && x < 3) ? normalized(255, c) : 0.0;
        EXPECT_NEAR(at(out, 4, 5, c, y, x), want, kTol) << c << " " << y << " " << x;
      }
}

TEST(WriteNormalized, BrightnessScalesValues) {
  // R=100, G=50, B=20 at brightness 1.5: 150, 75, 30; R=200 saturates at 255.
  cv::Mat image(1, 2, CV_8UC3);
  image.at<cv::Vec3b>(0, 0) = cv::Vec3b(20, 50, 100);
  image.at<cv::Vec3b>(0, 1) = cv::Vec3b(0, 0, 200);
  TransformedSample s;
  s.image = image;
  s.params.brightness = 1.5f;
  std::vector<float> out(6);
  write_normalized(s, TransformOptions{}, out.data(), 1, 2);
  EXPECT_NEAR(at(out, 1, 2, 0, 0, 0), normalized(150, 0), kTol);
  EXPECT_NEAR(at(out, 1, 2, 1, 0, 0), normalized(75, 1), kTol);
  EXPECT_NEAR(at(out, 1, 2, 2, 0, 0), normalized(30, 2), kTol);
  EXPECT_NEAR(at(out, 1, 2, 0, 0, 1), normalized(255, 0), kTol);
}

TEST(WriteNormalized, ContrastBlendsWithMeanGrey) {
  // Pixels grey 200 and 0: mean grey 100. Contrast 0.5: 0.5 * 200 + 0.5 * 100 = 150, and 50.
  cv::Mat image(1, 2, CV_8UC3);
  image.at<cv::Vec3b>(0, 0) = cv::Vec3b(200, 200, 200);
  image.at<cv::Vec3b>(0, 1) = cv::Vec3b(0, 0, 0);
  TransformedSample s;
  s.image = image;
  s.params.contrast = 0.5f;
  std::vector<float> out(6);
  write_normalized(s, TransformOptions{}, out.data(), 1, 2);
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(at(out, 1, 2, c, 0, 0), normalized(150, c), 1e-4);
    EXPECT_NEAR(at(out, 1, 2, c, 0, 1), normalized(50, c), 1e-4);
  }
}

TEST(WriteNormalized, SaturationBlendsWithPixelGrey) {
  // R=100, G=50, B=20: grey 0.299*100 + 0.587*50 + 0.114*20 = 61.53.
  // Saturation 0 gives 61.53 everywhere; saturation 2 gives 2v - 61.53: 138.47, 38.47, 0 (clamped).
  cv::Mat image(1, 1, CV_8UC3);
  image.at<cv::Vec3b>(0, 0) = cv::Vec3b(20, 50, 100);
  TransformedSample s;
  s.image = image;
  std::vector<float> out(3);
  s.params.saturation = 0.f;
  write_normalized(s, TransformOptions{}, out.data(), 1, 1);
  for (int c = 0; c < 3; ++c) EXPECT_NEAR(out[c], normalized(61.53, c), 1e-4);
  s.params.saturation = 2.f;
  write_normalized(s, TransformOptions{}, out.data(), 1, 1);
  EXPECT_NEAR(out[0], normalized(138.47, 0), 1e-4);
  EXPECT_NEAR(out[1], normalized(38.47, 1), 1e-4);
  EXPECT_NEAR(out[2], normalized(0, 2), 1e-4);
}

TEST(DrawTransformParams, RespectsOptions) {
  TransformOptions opt;
  opt.shorter_sides = {320, 352, 384};
  opt.flip_prob = 0.5;
  opt.jitter.brightness = 0.2;
  int flips = 0;
  std::vector<int> seen_size(3, 0);
  for (uint64_t seed = 0; seed < 2000; ++seed) {
    const TransformParams p = draw_transform_params(opt, seed);
    flips += p.flip;
    const int k = (p.shorter_side - 320) / 32;
    ASSERT_TRUE(k >= 0 && k < 3 && p.shorter_side == 320 + 32 * k) << p.shorter_side;
    ++seen_size[k];
    EXPECT_GE(p.brightness, 0.8f);
    EXPECT_LE(p.brightness, 1.2f);
    EXPECT_EQ(p.contrast, 1.f);  // off
    EXPECT_EQ(p.saturation, 1.f);
  }
  // Binomial(2000, 0.5): mean 1000, sd 22; 1000 +- 150 is 6.7 sd.
  EXPECT_NEAR(flips, 1000, 150);
  for (int n : seen_size) EXPECT_NEAR(n, 667, 150);
  opt.flip_prob = 0;
  for (uint64_t seed = 0; seed < 100; ++seed) EXPECT_FALSE(draw_transform_params(opt, seed).flip);
}

TEST(Validate, RejectsBadTransformOptions) {
  TransformOptions opt;
  opt.shorter_sides = {};
  EXPECT_THROW(validate(opt), Error);
  opt.shorter_sides = {0};
  EXPECT_THROW(validate(opt), Error);
  opt.shorter_sides = {800};
  opt.flip_prob = 1.5;
  EXPECT_THROW(validate(opt), Error);
}

TEST(Collate, PadsToMultipleOfDivisorAndKeepsSizes) {
  // Images 100x60 and 50x130 (w x h), divisor 32: H = 130 -> 160, W = 100 -> 128.
  TransformedSample a, b;
  a.image = cv::Mat(60, 100, CV_8UC3, cv::Scalar(255, 255, 255));
  a.boxes = {{1, 2, 3, 4}};
  a.labels = {2};
  a.image_id = 7;
  a.scale = 0.5;
  a.original_width = 200;
  a.original_height = 120;
  b.image = cv::Mat(130, 50, CV_8UC3, cv::Scalar(255, 255, 255));
  b.crowd_boxes = {{5, 6, 7, 8}};
  b.image_id = 9;
  const Batch batch = collate({a, b}, TransformOptions{}, 32);
  ASSERT_EQ(batch.images.sizes(), (std::vector<int64_t>{2, 3, 160, 128}));
  EXPECT_EQ(batch.images.dtype(), torch::kFloat);
  // Image 0 occupies [0, 60) x [0, 100) of slot 0; everything else there is padding.
  const auto img0 = batch.images[0];
  const double white_r = normalized(255, 0);
  EXPECT_NEAR(img0[0][59][99].item<float>(), white_r, kTol);
  EXPECT_EQ(img0.slice(1, 60).abs().max().item<float>(), 0.f);
  EXPECT_EQ(img0.slice(2, 100).abs().max().item<float>(), 0.f);
  const auto img1 = batch.images[1];
  EXPECT_NEAR(img1[0][129][49].item<float>(), white_r, kTol);
  EXPECT_EQ(img1.slice(1, 130).abs().max().item<float>(), 0.f);
  EXPECT_EQ(img1.slice(2, 50).abs().max().item<float>(), 0.f);

  EXPECT_EQ(batch.image_ids, (std::vector<int64_t>{7, 9}));
  EXPECT_EQ(batch.image_sizes[0], (std::array<int, 2>{60, 100}));
  EXPECT_EQ(batch.image_sizes[1], (std::array<int, 2>{130, 50}));
  EXPECT_EQ(batch.original_sizes[0], (std::array<int, 2>{120, 200}));
  EXPECT_DOUBLE_EQ(batch.scales[0], 0.5);
  ASSERT_EQ(batch.boxes[0].sizes(), (std::vector<int64_t>{1, 4}));
  EXPECT_TRUE(torch::equal(batch.boxes[0], torch::tensor({{1.f, 2.f, 3.f, 4.f}})));
  EXPECT_EQ(batch.labels[0].dtype(), torch::kLong);
  EXPECT_EQ(batch.labels[0].item<int64_t>(), 2);
  ASSERT_EQ(batch.boxes[1].sizes(), (std::vector<int64_t>{0, 4}));
  EXPECT_EQ(batch.labels[1].numel(), 0);
  ASSERT_EQ(batch.crowd_boxes[1].sizes(), (std::vector<int64_t>{1, 4}));
  EXPECT_EQ(batch.crowd_boxes[0].size(0), 0);
}

TEST(Collate, ExactMultipleIsNotPadded) {
  TransformedSample a;
  a.image = cv::Mat(384, 512, CV_8UC3, cv::Scalar(0, 0, 0));
  const Batch batch = collate({a}, TransformOptions{}, 128);
  EXPECT_EQ(batch.images.sizes(), (std::vector<int64_t>{1, 3, 384, 512}));
}

}  // namespace
}  // namespace focaldet::data
