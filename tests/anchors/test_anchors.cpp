// Anchors, box coder and IoU against torchvision 0.14 (tests/anchors/oracle.py), plus the box
// coder's round trip by hand.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "anchors/anchor_generator.h"
#include "anchors/box_coder.h"
#include "anchors/box_ops.h"
#include "common/error.h"
#include "support/oracle.h"

namespace focaldet::anchors {
namespace {

namespace t = focaldet::test;

std::map<std::string, at::Tensor> run_oracle(const std::vector<std::string>& args) {
  std::string log;
  const int rc = t::run_python(t::source_path("tests/anchors/oracle.py"), args, &log);
  if (rc != 0) throw std::runtime_error("oracle.py failed (" + std::to_string(rc) + "): " + log);
  return t::load_tensors(args.at(args[0] == "anchors" ? 1 : 2));
}

// Random valid boxes: x1 < x2, y1 < y2, within [0, extent].
at::Tensor random_boxes(int64_t n, double extent, at::ScalarType dtype = at::kFloat) {
  const at::Tensor xy = at::rand({n, 2}, at::kDouble) * extent * 0.8;
  const at::Tensor wh = at::rand({n, 2}, at::kDouble) * extent * 0.3 + 1.0;
  return at::cat({xy, xy + wh}, 1).to(dtype);
}

void expect_anchor_parity(int64_t h, int64_t w, const std::vector<Size2>& feats) {
  FOCALDET_REQUIRE_PYTHON("torch", "torchvision");
  const std::string dir = t::make_temp_dir("anchors");
  std::vector<std::string> args = {"anchors", dir + "/out.pt", std::to_string(h),
                                   std::to_string(w)};
  for (const auto& [fh, fw] : feats) {
    args.push_back(std::to_string(fh));
    args.push_back(std::to_string(fw));
  }
  auto ref = run_oracle(args);
  AnchorGenerator gen;
  const at::Tensor got = gen.anchors({h, w}, feats, at::kCPU);
  ASSERT_EQ(got.sizes(), ref["anchors"].sizes());
  // Integer-valued anchors from the same float32 arithmetic: exact.
  EXPECT_TRUE(at::equal(got, ref["anchors"])) << (got - ref["anchors"]).abs().max();
  EXPECT_TRUE(at::equal(gen.cell_anchors(0), ref["cell0"]));
  int64_t total = 0;
  for (int64_t n : gen.num_anchors_per_level(feats)) total += n;
  EXPECT_EQ(total, got.size(0));
}

TEST(AnchorGenerator, MatchesTorchvisionRetinaNetAnchors) {
  // The levels of a ResNet-50-FPN on a 128 x 160 input (strides 8..128).
  expect_anchor_parity(128, 160, {{16, 20}, {8, 10}, {4, 5}, {2, 3}, {1, 2}});
}

TEST(AnchorGenerator, MatchesTorchvisionWhenStridesDoNotDivide) {
  // 100 x 130 input: stride = image // grid per axis, differing between axes and levels.
  expect_anchor_parity(100, 130, {{13, 17}, {7, 9}, {4, 5}, {2, 3}, {1, 2}});
}

TEST(AnchorGenerator, DefaultSizesTruncateLikeTorchvision) {
  const auto sizes = anchor_sizes(AnchorOptions{});
  ASSERT_EQ(sizes.size(), 5u);
  // int(32 * 2^(1/3)) = 40, int(32 * 2^(2/3)) = 50, int(512 * 2^(2/3)) = 812.
  EXPECT_EQ(sizes[0], (std::vector<double>{32, 40, 50}));
  EXPECT_EQ(sizes[4], (std::vector<double>{512, 645, 812}));
}

TEST(AnchorGenerator, CachesPerFeatureSize) {
  AnchorGenerator gen;
  const std::vector<Size2> feats = {{4, 4}, {2, 2}, {1, 1}, {1, 1}, {1, 1}};
  const at::Tensor a = gen.anchors({32, 32}, feats, at::kCPU);
  const at::Tensor b = gen.anchors({32, 32}, feats, at::kCPU);
  EXPECT_EQ(a.data_ptr(), b.data_ptr());
  const at::Tensor c = gen.anchors({64, 32}, feats, at::kCPU);
  EXPECT_NE(a.data_ptr(), c.data_ptr());
}

TEST(AnchorGenerator, CacheStaysBounded) {
  AnchorGenerator gen;
  const std::vector<Size2> feats = {{2, 2}, {1, 1}, {1, 1}, {1, 1}, {1, 1}};
  for (int64_t i = 0; i < 2 * static_cast<int64_t>(AnchorGenerator::kMaxCachedSizes); ++i) {
    gen.anchors({16 + i, 16}, feats, at::kCPU);
    EXPECT_LE(gen.cached_sizes(), AnchorGenerator::kMaxCachedSizes);
  }
  EXPECT_GE(gen.cached_sizes(), 1u);
}

TEST(AnchorGenerator, LevelStridesKeepAnchorsOnTheFeatureGrid) {
  // A 320 x 448 batch (a 320 px short side padded to 32): P3..P7 are 40x56, 20x28, 10x14, 5x7
  // and 3x4. torchvision's stride, image // grid, is 106 x 112 at P7; the level's own is 128.
  const std::vector<Size2> feats = {{40, 56}, {20, 28}, {10, 14}, {5, 7}, {3, 4}};
  AnchorOptions level;
  level.strides = {8, 16, 32, 64, 128};
  const AnchorGenerator fixed(level), tv;
  const at::Tensor a = fixed.anchors({320, 448}, feats, at::kCPU);
  const at::Tensor b = tv.anchors({320, 448}, feats, at::kCPU);
  const std::vector<int64_t> counts = fixed.num_anchors_per_level(feats);
  const auto la = a.split_with_sizes(counts), lb = b.split_with_sizes(counts);
  const int64_t per_loc = fixed.anchors_per_location();
  for (int64_t l = 0; l < 5; ++l) {
    const auto [gh, gw] = feats[l];
    // Centre of the anchors of location (y, x): (x * stride, y * stride), by hand.
    const at::Tensor centres = ((la[l].narrow(1, 0, 2) + la[l].narrow(1, 2, 2)) / 2)
                                   .view({gh, gw, per_loc, 2});
    const int64_t stride = 8 << l;
    for (int64_t y : {int64_t{0}, gh - 1}) {
      for (int64_t x : {int64_t{0}, gw - 1}) {
        const at::Tensor c = centres[y][x];
        EXPECT_TRUE(at::equal(c.select(1, 0), at::full({per_loc}, float(x * stride))))
            << "level " << l << " x " << x;
        EXPECT_TRUE(at::equal(c.select(1, 1), at::full({per_loc}, float(y * stride))))
            << "level " << l << " y " << y;
      }
    }
    // Where image // grid equals the level's stride (P3..P6 here), both grids are one.
    EXPECT_EQ(at::equal(la[l], lb[l]), l < 4) << "level " << l;
  }
  AnchorOptions wrong;
  wrong.strides = {8, 16};
  EXPECT_THROW(AnchorGenerator{wrong}, Error);
}

TEST(AnchorGenerator, WrongNumberOfLevelsIsAnError) {
  AnchorGenerator gen;
  EXPECT_THROW(gen.anchors({32, 32}, {{4, 4}}, at::kCPU), Error);
}

TEST(BoxIou, MatchesTorchvisionOnRandomBoxes) {
  FOCALDET_REQUIRE_PYTHON("torch", "torchvision");
  at::manual_seed(1);
  const std::string dir = t::make_temp_dir("iou");
  const at::Tensor a = random_boxes(60, 100), b = random_boxes(45, 100);
  t::save_tensors(dir + "/in.pt", {{"a", a}, {"b", b}});
  auto ref = run_oracle({"iou", dir + "/in.pt", dir + "/out.pt"});
  // Same float32 formula; 1e-6 absolute covers a different summation order of the union.
  EXPECT_TRUE(at::allclose(box_iou(a, b), ref["iou"], /*rtol=*/1e-6, /*atol=*/1e-6));
}

TEST(BoxIou, HandComputed) {
  const at::Tensor a = at::tensor({0.f, 0.f, 2.f, 2.f}).view({1, 4});
  const at::Tensor b =
      at::tensor({1.f, 1.f, 3.f, 3.f, 5.f, 5.f, 6.f, 6.f, 0.f, 0.f, 2.f, 2.f}).view({3, 4});
  // Overlap 1x1 of two 2x2 boxes: 1 / (4 + 4 - 1); disjoint: 0; identical: 1.
  const at::Tensor want = at::tensor({1.f / 7.f, 0.f, 1.f}).view({1, 3});
  EXPECT_TRUE(at::allclose(box_iou(a, b), want, /*rtol=*/0, /*atol=*/1e-7));
  // Intersection over the first box's area: 1/4.
  EXPECT_NEAR(box_ioa(a, b)[0][0].item<float>(), 0.25f, 1e-7);
}

TEST(BoxCoder, MatchesTorchvisionEncodeAndDecode) {
  FOCALDET_REQUIRE_PYTHON("torch", "torchvision");
  at::manual_seed(2);
  const std::string dir = t::make_temp_dir("coder");
  const at::Tensor boxes = random_boxes(50, 200), anchors = random_boxes(50, 200);
  // Includes deltas past the dw/dh clamp (log(1000/16) = 4.135).
  const at::Tensor rel = at::randn({50, 4}) * 3;
  const BoxCoderOptions opt{/*wx=*/10, /*wy=*/10, /*ww=*/5, /*wh=*/5};
  t::save_tensors(dir + "/in.pt", {{"boxes", boxes},
                                   {"anchors", anchors},
                                   {"rel", rel},
                                   {"weights", at::tensor({10.0, 10.0, 5.0, 5.0})}});
  auto ref = run_oracle({"coder", dir + "/in.pt", dir + "/out.pt"});
  // Same float32 formulas; relative 1e-5 covers exp/log ulp differences.
  EXPECT_TRUE(at::allclose(encode_boxes(boxes, anchors, opt), ref["deltas"], 1e-5, 1e-5));
  EXPECT_TRUE(at::allclose(decode_boxes(rel, anchors, opt), ref["decoded"], 1e-5, 1e-4));
}

TEST(BoxCoder, RoundTripInDouble) {
  at::manual_seed(3);
  const at::Tensor boxes = random_boxes(100, 500, at::kDouble);
  const at::Tensor anchors = random_boxes(100, 500, at::kDouble);
  const BoxCoderOptions opt{/*wx=*/10, /*wy=*/10, /*ww=*/5, /*wh=*/5};
  const at::Tensor back = decode_boxes(encode_boxes(boxes, anchors, opt), anchors, opt);
  // Random boxes are at most ~150/1 apart in size, inside the clamp: exact up to rounding.
  EXPECT_TRUE(at::allclose(back, boxes, /*rtol=*/0, /*atol=*/1e-9));
}

TEST(BoxCoder, HandComputedEncode) {
  // Anchor centre (5, 5), 10x10; box centre (7, 4), 20x5.
  const at::Tensor anchor = at::tensor({0.0, 0.0, 10.0, 10.0}).view({1, 4});
  const at::Tensor box = at::tensor({-3.0, 1.5, 17.0, 6.5}).view({1, 4});
  const at::Tensor want = at::tensor({0.2, -0.1, std::log(2.0), std::log(0.5)}).view({1, 4});
  EXPECT_TRUE(at::allclose(encode_boxes(box, anchor), want, 0, 1e-12));
}

TEST(BoxCoder, DecodeClampsLargeScales) {
  const at::Tensor anchor = at::tensor({0.0, 0.0, 16.0, 16.0}).view({1, 4});
  const at::Tensor deltas = at::tensor({0.0, 0.0, 100.0, 100.0}).view({1, 4});
  // exp(log(1000/16)) * 16 = 1000 wide, centred at 8.
  const at::Tensor want = at::tensor({-492.0, -492.0, 508.0, 508.0}).view({1, 4});
  EXPECT_TRUE(at::allclose(decode_boxes(deltas, anchor), want, 0, 1e-9));
}

TEST(BoxCoder, RejectsBadShapes) {
  EXPECT_THROW(encode_boxes(at::zeros({3, 4}), at::zeros({2, 4})), Error);
  EXPECT_THROW(decode_boxes(at::zeros({3, 5}), at::zeros({3, 4})), Error);
}

}  // namespace
}  // namespace focaldet::anchors
