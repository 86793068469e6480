// The fused sigmoid focal loss against independent references: binary cross-entropy, a long
// double evaluation of the definition, hand-computed values, and finite differences.
#include "loss/sigmoid_focal.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "common/error.h"
#include "loss_test_util.h"

namespace focaldet::loss {
namespace {

using test::focal_reference;
using test::random_targets;

torch::Tensor one_hot_double(const torch::Tensor& targets, int64_t classes) {
  auto out = torch::zeros({targets.size(0), classes}, torch::kDouble);
  for (int64_t i = 0; i < targets.size(0); ++i) {
    const int64_t t = targets[i].item<int64_t>();
    if (t >= 0) out[i][t] = 1.0;
  }
  return out;
}

FocalOptions options(double alpha, double gamma, Reduction r = Reduction::Sum) {
  FocalOptions o;
  o.alpha = alpha;
  o.gamma = gamma;
  o.reduction = r;
  return o;
}

TEST(SigmoidFocal, GammaZeroAlphaOffEqualsBceValueAndGradient) {
  torch::manual_seed(1);
  const auto x = (torch::randn({64, 7}, torch::kDouble) * 4).requires_grad_(true);
  const auto t = random_targets(64, 7, 2);
  const auto valid = t.ne(-2).to(torch::kDouble).unsqueeze(1);

  const auto got = sigmoid_focal_loss(x, t, options(-1, 0, Reduction::None));
  const auto x_ref = x.detach().clone().requires_grad_(true);
  const auto want = torch::binary_cross_entropy_with_logits(x_ref, one_hot_double(t, 7), {}, {},
                                                            at::Reduction::None) *
                    valid;
  // 1e-6 relative is the bar; both are float64.
  EXPECT_TRUE(torch::allclose(got, want, /*rtol=*/1e-6, /*atol=*/1e-12));

  got.sum().backward();
  want.sum().backward();
  EXPECT_TRUE(torch::allclose(x.grad(), x_ref.grad(), /*rtol=*/1e-6, /*atol=*/1e-12));
}

TEST(SigmoidFocal, HandComputedCases) {
  // x = 0, positive, alpha .25, gamma 2: p = 1/2, loss = .25 * (1/2)^2 * ln 2.
  const auto x = torch::zeros({1, 2}, torch::kDouble);
  const auto t = torch::tensor({0}, torch::kLong);
  auto per = sigmoid_focal_loss(x, t, options(0.25, 2, Reduction::None));
  EXPECT_NEAR(per[0][0].item<double>(), 0.25 * 0.25 * std::log(2.0), 1e-15);
  // The second class is a negative: (1 - .25) * (1/2)^2 * ln 2.
  EXPECT_NEAR(per[0][1].item<double>(), 0.75 * 0.25 * std::log(2.0), 1e-15);

  // x = ln 3, negative, gamma 1, alpha off: p = 3/4, loss = (3/4) * -ln(1/4) = 0.75 ln 4.
  const auto x2 = torch::full({1, 1}, std::log(3.0), torch::kDouble);
  const auto t2 = torch::tensor({-1}, torch::kLong);
  EXPECT_NEAR(sigmoid_focal_loss(x2, t2, options(-1, 1)).item<double>(), 0.75 * std::log(4.0),
              1e-14);
}

// The kernel has two loops: one vectorised along a row (16 classes or more) and one over a
// block of short rows seen as a flat array. Every numerical test runs both.
TEST(SigmoidFocal, MatchesLongDoubleReferenceInFloat64AndFloat32) {
  for (int64_t classes : {5, 20, 80}) {
    torch::manual_seed(3);
    const auto x = torch::randn({700, classes}, torch::kDouble) * 6;
    const auto t = random_targets(700, classes, 4);
    for (double gamma : {0.0, 0.5, 1.0, 2.0, 3.7}) {
      for (double alpha : {-1.0, 0.25, 0.9}) {
        const auto want = focal_reference(x, t, alpha, gamma);
        const auto got64 = sigmoid_focal_loss(x, t, options(alpha, gamma, Reduction::None));
        EXPECT_TRUE(torch::allclose(got64, want, 1e-12, 1e-15)) << "gamma " << gamma;
        // float32 kernel: polynomial exp/log1p, about 1 ulp each; 1e-5 relative leaves room.
        const auto got32 =
            sigmoid_focal_loss(x.to(torch::kFloat), t, options(alpha, gamma, Reduction::None));
        EXPECT_TRUE(torch::allclose(got32.to(torch::kDouble), want, 1e-5, 1e-7))
            << "classes " << classes << " gamma " << gamma << " alpha " << alpha << " max err "
            << (got32.to(torch::kDouble) - want).abs().max().item<double>();
      }
    }
  }
}

TEST(SigmoidFocal, ExtremeLogitsStayFiniteAndExact) {
  // Row 0 is a positive of class 0; logits +-100 are confident right / wrong answers.
  for (auto dtype : {torch::kFloat, torch::kDouble}) {
    const auto x = torch::tensor({{100.0, -100.0, 100.0, -1e4, 1e4}}, dtype).requires_grad_(true);
    const auto t = torch::tensor({0}, torch::kLong);
    const auto loss = sigmoid_focal_loss(x, t, options(0.25, 2, Reduction::None));
    loss.sum().backward();
    EXPECT_TRUE(torch::isfinite(loss).all().item<bool>());
    EXPECT_TRUE(torch::isfinite(x.grad()).all().item<bool>());
    const auto l = loss.to(torch::kDouble);
    const auto g = x.grad().to(torch::kDouble);
    // Right answers cost ~0 (e^-100 scale) and get ~0 gradient.
    EXPECT_NEAR(l[0][0].item<double>(), 0.0, 1e-30);
    EXPECT_NEAR(l[0][1].item<double>(), 0.0, 1e-30);
    EXPECT_NEAR(g[0][0].item<double>(), 0.0, 1e-30);
    // A negative at +100: loss = (1 - alpha) * 1 * 100, gradient (1 - alpha) (p - 0) -> 0.75.
    EXPECT_NEAR(l[0][2].item<double>(), 75.0, 1e-4);
    EXPECT_NEAR(g[0][2].item<double>(), 0.75, 1e-6);
    // A negative at +1e4: loss 7500, gradient 0.75, no overflow.
    EXPECT_NEAR(l[0][4].item<double>(), 7500.0, 1e-2);
    EXPECT_NEAR(g[0][4].item<double>(), 0.75, 1e-6);
  }
}

TEST(SigmoidFocal, GradientMatchesFiniteDifferences) {
  for (int64_t classes : {4, 17}) {
    torch::manual_seed(5);
    const auto x0 = torch::randn({12, classes}, torch::kDouble) * 3;
    const auto t = random_targets(12, classes, 6);
    const auto w = torch::rand({12, classes}, torch::kDouble);  // upstream for reduction none
    for (double gamma : {0.0, 0.5, 2.0, 3.3}) {
      for (double alpha : {-1.0, 0.25}) {
        for (auto r : {Reduction::Sum, Reduction::Mean, Reduction::None}) {
          const auto opt = options(alpha, gamma, r);
          auto f = [&](const torch::Tensor& x) {
            auto l = sigmoid_focal_loss(x, t, opt);
            return (r == Reduction::None ? (l * w).sum() : l).item<double>();
          };
          const auto x = x0.clone().requires_grad_(true);
          auto l = sigmoid_focal_loss(x, t, opt);
          (r == Reduction::None ? (l * w).sum() : l).backward();
          const auto numeric = test::finite_difference_grad(f, x0);
          // atol: central differences (h = 1e-6) of a sum of ~200 terms of size ~1 carry about
          // 1e-16 * 200 / 1e-6 = 2e-8 of rounding error.
          EXPECT_TRUE(torch::allclose(x.grad(), numeric, 1e-6, 1e-7))
              << "classes " << classes << " gamma " << gamma << " alpha " << alpha << " reduction "
              << to_string(r) << " max err " << (x.grad() - numeric).abs().max().item<double>()
              << " max grad " << numeric.abs().max().item<double>();
        }
      }
    }
  }
}

TEST(SigmoidFocal, Float32GradientMatchesFloat64) {
  for (int64_t classes : {3, 80}) {
    torch::manual_seed(10);
    const auto x64 = (torch::randn({300, classes}, torch::kDouble) * 5).requires_grad_(true);
    const auto x32 = x64.detach().to(torch::kFloat).requires_grad_(true);
    const auto t = random_targets(300, classes, 11);
    sigmoid_focal_loss(x64, t, options(0.25, 2)).backward();
    sigmoid_focal_loss(x32, t, options(0.25, 2)).backward();
    EXPECT_TRUE(torch::allclose(x32.grad().to(torch::kDouble), x64.grad(), 1e-5, 1e-7))
        << "classes " << classes;
  }
}

// The composite path is what runs on CUDA; here, on the CPU, it must agree with the fused
// kernel in value, gradient and breakdown.
TEST(SigmoidFocal, CompositePathAgreesWithFusedKernel) {
  torch::manual_seed(13);
  // Mostly confident background, as in a trained detector, so there are easy and hard negatives.
  const auto x0 = torch::randn({90, 20}, torch::kDouble) * 3 - 7;
  const auto t = random_targets(90, 20, 14);
  for (double gamma : {0.0, 2.0, 1.5}) {
    for (auto r : {Reduction::Sum, Reduction::Mean, Reduction::None}) {
      const auto opt = options(0.25, gamma, r);
      const auto xf = x0.clone().requires_grad_(true), xc = x0.clone().requires_grad_(true);
      LossBreakdown bf, bc;
      const auto lf = sigmoid_focal_loss(xf, t, opt, &bf);
      const auto lc = sigmoid_focal_loss_composite(xc, t, opt, &bc);
      EXPECT_TRUE(torch::allclose(lf, lc, 1e-12, 1e-14));
      lf.sum().backward();
      lc.sum().backward();
      EXPECT_TRUE(torch::allclose(xf.grad(), xc.grad(), 1e-10, 1e-14)) << "gamma " << gamma;
      EXPECT_NEAR(bf.loss_pos, bc.loss_pos, 1e-10);
      EXPECT_NEAR(bf.loss_neg_easy, bc.loss_neg_easy, 1e-10);
      EXPECT_NEAR(bf.loss_neg_hard, bc.loss_neg_hard, 1e-10);
      EXPECT_EQ(bf.num_neg_easy, bc.num_neg_easy);
      EXPECT_EQ(bf.num_neg_hard, bc.num_neg_hard);
      EXPECT_EQ(bf.num_ignored, bc.num_ignored);
      EXPECT_GT(bc.num_neg_easy, 0);
      EXPECT_GT(bc.num_neg_hard, 0);
    }
  }
}

TEST(SigmoidFocal, BackwardTwiceWithRetainGraphAccumulates) {
  torch::manual_seed(6);
  const auto x = torch::randn({5, 3}, torch::kDouble).requires_grad_(true);
  const auto t = torch::tensor({0, -1, 2, -2, 1}, torch::kLong);
  const auto loss = sigmoid_focal_loss(x, t, options(0.25, 2)) * 0.5;
  loss.backward({}, /*retain_graph=*/true);
  const auto once = x.grad().clone();
  loss.backward();  // the second pass recomputes the gradient the first one handed over
  EXPECT_TRUE(torch::allclose(x.grad(), 2 * once, 1e-14, 0));
  EXPECT_GT(once.abs().sum().item<double>(), 0.0);
}

TEST(SigmoidFocal, IgnoredAnchorsContributeNothingAndGetZeroGradient) {
  torch::manual_seed(7);
  auto x = torch::randn({6, 3}, torch::kDouble).requires_grad_(true);
  const auto t = torch::tensor({0, -2, 1, -1, -2, 2}, torch::kLong);
  const auto loss = sigmoid_focal_loss(x, t, options(0.25, 2));
  loss.backward();
  EXPECT_EQ(x.grad()[1].abs().sum().item<double>(), 0.0);
  EXPECT_EQ(x.grad()[4].abs().sum().item<double>(), 0.0);
  // Changing ignored logits changes nothing.
  auto x2 = x.detach().clone();
  x2[1].fill_(50.0);
  x2[4].fill_(-50.0);
  EXPECT_DOUBLE_EQ(sigmoid_focal_loss(x2, t, options(0.25, 2)).item<double>(), loss.item<double>());
}

TEST(SigmoidFocal, ReductionsAgree) {
  torch::manual_seed(8);
  const auto x = torch::randn({40, 6}, torch::kDouble);
  const auto t = random_targets(40, 6, 9);
  const auto none = sigmoid_focal_loss(x, t, options(0.25, 2, Reduction::None));
  const double sum = sigmoid_focal_loss(x, t, options(0.25, 2, Reduction::Sum)).item<double>();
  const double mean = sigmoid_focal_loss(x, t, options(0.25, 2, Reduction::Mean)).item<double>();
  const int64_t valid_rows = t.ne(-2).sum().item<int64_t>();
  EXPECT_NEAR(none.sum().item<double>(), sum, 1e-12);
  EXPECT_NEAR(mean, sum / static_cast<double>(valid_rows * 6), 1e-14);
  // An all-ignored batch: 0, not NaN.
  const auto all_ignored = torch::full({3}, -2, torch::kLong);
  EXPECT_EQ(sigmoid_focal_loss(x.narrow(0, 0, 3), all_ignored, options(0.25, 2, Reduction::Mean))
                .item<double>(),
            0.0);
}

TEST(SigmoidFocal, BreakdownPartsSumToTotalAndClassifyEasyNegatives) {
  // logit(0.1) = -2.197: row 1 is easy (all below), row 2 is hard (one class at 0).
  const auto x = torch::tensor({{1.0, -3.0}, {-3.0, -2.5}, {0.0, -5.0}, {-4.0, -4.0}, {2.0, 2.0}},
                               torch::kDouble);
  const auto t = torch::tensor({0, -1, -1, -1, -2}, torch::kLong);
  for (auto r : {Reduction::Sum, Reduction::Mean}) {
    LossBreakdown b;
    const double total = sigmoid_focal_loss(x, t, options(0.25, 2, r), &b).item<double>();
    EXPECT_NEAR(b.total(), total, 1e-12);
    EXPECT_EQ(b.num_pos, 1);
    EXPECT_EQ(b.num_neg_easy, 2);
    EXPECT_EQ(b.num_neg_hard, 1);
    EXPECT_EQ(b.num_ignored, 1);
    const auto ref = focal_reference(x, t, 0.25, 2).sum(1);
    const double divisor = r == Reduction::Mean ? 8.0 : 1.0;  // 4 valid rows x 2 classes
    EXPECT_NEAR(b.loss_pos, ref[0].item<double>() / divisor, 1e-12);
    EXPECT_NEAR(b.loss_neg_easy, (ref[1] + ref[3]).item<double>() / divisor, 1e-12);
    EXPECT_NEAR(b.loss_neg_hard, ref[2].item<double>() / divisor, 1e-12);
    EXPECT_NEAR(b.easy_neg_share(), b.loss_neg_easy / total, 1e-12);
  }
}

TEST(SigmoidFocal, RejectsBadInputNamingTheValue) {
  const auto x = torch::zeros({3, 4});
  const auto t = torch::tensor({0, -1, 2}, torch::kLong);
  auto expect_error = [](const std::function<void()>& f, const std::string& needle) {
    try {
      f();
      ADD_FAILURE() << "no error; expected one mentioning '" << needle << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error(
      [&] {
        sigmoid_focal_loss(x, torch::tensor({0, 1}, torch::kLong));
      },
      "[N] with N = 3");
  expect_error([&] { sigmoid_focal_loss(x.view({12}), t); }, "logits must be [N, C]");
  expect_error(
      [&] {
        sigmoid_focal_loss(x, torch::tensor({0, 4, 1}, torch::kLong));
      },
      "targets[1] = 4");
  expect_error(
      [&] {
        sigmoid_focal_loss(x, torch::tensor({0, -3, 1}, torch::kLong));
      },
      "targets[1] = -3");
  expect_error([&] { sigmoid_focal_loss(x.to(torch::kInt), t); }, "float32 or float64, got Int");
  expect_error([&] { sigmoid_focal_loss(x, t.to(torch::kInt)); }, "targets must be int64, got Int");
  expect_error([&] { sigmoid_focal_loss(x, t, options(std::nan(""), 2)); }, "alpha must be finite");
  expect_error([&] { sigmoid_focal_loss(x, t, options(0.25, INFINITY)); }, "gamma must be finite");
  expect_error([&] { sigmoid_focal_loss(x, t, options(0.25, -1)); }, "got -1");
}

}  // namespace
}  // namespace focaldet::loss
