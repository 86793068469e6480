// Box losses by hand, and GIoU's gradient against central finite differences in double.
#include "loss/box_loss.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "common/error.h"

namespace focaldet::loss {
namespace {

at::Tensor boxes(std::initializer_list<double> v) {
  return at::tensor(std::vector<double>(v), at::kDouble).view({-1, 4});
}

TEST(GIoULoss, HandComputedValues) {
  // Overlapping 2x2 squares: IoU 1/7, enclosing 3x3 = 9, union 7: GIoU = 1/7 - 2/9.
  // Disjoint unit squares at (0,0) and (2,2): IoU 0, enclosing 9, union 2: GIoU = -7/9.
  // Identical boxes: GIoU 1, loss 0.
  const at::Tensor p = boxes({0, 0, 2, 2, 0, 0, 1, 1, 5, 5, 8, 9});
  const at::Tensor g = boxes({1, 1, 3, 3, 2, 2, 3, 3, 5, 5, 8, 9});
  const at::Tensor want = at::tensor({1 - (1.0 / 7 - 2.0 / 9), 1 + 7.0 / 9, 0.0}, at::kDouble);
  // eps = 1e-7 in the denominators shifts values by ~1e-7 relative.
  EXPECT_TRUE(at::allclose(giou_loss(p, g, Reduction::None), want, 0, 1e-6));
  EXPECT_NEAR(giou_loss(p, g, Reduction::Sum).item<double>(), want.sum().item<double>(), 1e-6);
  EXPECT_NEAR(giou_loss(p, g, Reduction::Mean).item<double>(), want.mean().item<double>(), 1e-6);
}

TEST(GIoULoss, HandComputedGradient) {
  // Target [.5,.5,1.5,1.5] strictly inside pred [0,0,2,2] (no min/max ties): C = U = area(pred)
  // = 4, so loss = 1 - 1/area and
  // d loss / d x2 = (y2 - y1) / area^2 = 2/16; x1 and y1 get -2/16, y2 +2/16.
  const at::Tensor p = boxes({0, 0, 2, 2}).set_requires_grad(true);
  giou_loss(p, boxes({0.5, 0.5, 1.5, 1.5}), Reduction::Sum, /*eps=*/0).backward();
  const at::Tensor want = at::tensor({-0.125, -0.125, 0.125, 0.125}, at::kDouble).view({1, 4});
  EXPECT_TRUE(at::allclose(p.grad(), want, 0, 1e-12)) << p.grad();
}

TEST(GIoULoss, GradientMatchesFiniteDifferences) {
  at::manual_seed(5);
  // Random overlapping and disjoint pairs, in double; no coordinate sits on a kink (min/max
  // ties or zero overlap edges) for these seeds' continuous values.
  const at::Tensor xy = at::rand({16, 2}, at::kDouble) * 10;
  const at::Tensor p0 = at::cat({xy, xy + at::rand({16, 2}, at::kDouble) * 8 + 1}, 1);
  const at::Tensor gxy = xy + at::randn({16, 2}, at::kDouble) * 3;
  const at::Tensor g = at::cat({gxy, gxy + at::rand({16, 2}, at::kDouble) * 8 + 1}, 1);
  const at::Tensor p = p0.clone().set_requires_grad(true);
  giou_loss(p, g, Reduction::Sum).backward();
  const double h = 1e-6;
  at::Tensor numeric = at::zeros_like(p0);
  for (int64_t i = 0; i < p0.size(0); ++i) {
    for (int64_t k = 0; k < 4; ++k) {
      at::Tensor plus = p0.clone(), minus = p0.clone();
      plus[i][k] += h;
      minus[i][k] -= h;
      numeric[i][k] =
          (giou_loss(plus, g).item<double>() - giou_loss(minus, g).item<double>()) / (2 * h);
    }
  }
  // Central differences: O(h^2) truncation plus ~1e-16/h rounding, far below 1e-7.
  EXPECT_TRUE(at::allclose(p.grad(), numeric, 0, 1e-7)) << (p.grad() - numeric).abs().max();
}

TEST(SmoothL1Loss, HandComputedValues) {
  // d = (0.05, -0.5, 0, 2) with beta 0.1: 0.5*0.0025/0.1 + (0.5 - 0.05) + 0 + (2 - 0.05).
  const at::Tensor p = boxes({0.05, -0.5, 0, 2});
  const at::Tensor g = at::zeros_like(p);
  SmoothL1Options o;
  o.beta = 0.1;
  EXPECT_NEAR(smooth_l1_box_loss(p, g, o).item<double>(), 0.0125 + 0.45 + 1.95, 1e-12);
  o.beta = 0;  // L1
  EXPECT_NEAR(smooth_l1_box_loss(p, g, o).item<double>(), 2.55, 1e-12);
  EXPECT_NEAR(l1_box_loss(p, g).item<double>(), 2.55, 1e-12);
}

TEST(BoxLoss, RejectsMismatchedShapes) {
  EXPECT_THROW(giou_loss(at::zeros({2, 4}), at::zeros({3, 4})), Error);
  EXPECT_THROW(l1_box_loss(at::zeros({2, 3}), at::zeros({2, 3})), Error);
}

}  // namespace
}  // namespace focaldet::loss
