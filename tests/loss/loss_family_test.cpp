// The comparison losses (softmax focal, OHEM, CE variants), normalisers and the dispatching
// classification_loss, each against an independent computation.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "common/error.h"
#include "loss/classification_loss.h"
#include "loss/loss_normalizer.h"
#include "loss/ohem.h"
#include "loss/softmax_focal.h"
#include "loss_test_util.h"

namespace focaldet::loss {
namespace {

using test::random_targets;

TEST(SoftmaxFocal, GammaZeroAlphaOffEqualsSoftmaxCrossEntropy) {
  torch::manual_seed(11);
  const auto x = (torch::randn({30, 5}, torch::kDouble) * 3).requires_grad_(true);
  const auto t = random_targets(30, 4, 12);  // 4 classes + background column 4
  FocalOptions o;
  o.alpha = -1;
  o.gamma = 0;
  o.reduction = Reduction::None;
  const auto got = softmax_focal_loss(x, t, o);
  // torch's cross_entropy with background mapped to column 4 and ignored rows via ignore_index.
  const auto cls = torch::where(t.eq(-1), torch::full_like(t, 4), t);
  const auto x_ref = x.detach().clone().requires_grad_(true);
  const auto want = torch::nn::functional::cross_entropy(
      x_ref, cls,
      torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-2).reduction(torch::kNone));
  EXPECT_TRUE(torch::allclose(got, want, 1e-12, 1e-14));
  got.sum().backward();
  want.sum().backward();
  EXPECT_TRUE(torch::allclose(x.grad(), x_ref.grad(), 1e-12, 1e-14));
}

TEST(SoftmaxFocal, HandComputedCase) {
  // Logits (0, 0, ln 2) with background last; target class 0: p_t = 1/4.
  const auto x = torch::tensor({{0.0, 0.0, std::log(2.0)}}, torch::kDouble);
  FocalOptions o;  // alpha .25, gamma 2
  const double got = softmax_focal_loss(x, torch::tensor({0}, torch::kLong), o).item<double>();
  EXPECT_NEAR(got, -0.25 * std::pow(0.75, 2) * std::log(0.25), 1e-14);
  // Background target: p_t = 1/2, alpha_t = .75.
  const double bg = softmax_focal_loss(x, torch::tensor({-1}, torch::kLong), o).item<double>();
  EXPECT_NEAR(bg, -0.75 * 0.25 * std::log(0.5), 1e-14);
}

TEST(Ohem, KeepsExactlyTheHardestNegativesPerImage) {
  // 2 images x 8 anchors, 1 class. Image 0 has 1 positive (keeps 3 negatives), image 1 has 2
  // (keeps 6 of its 5 negatives = all). Negative hardness = logit, all distinct.
  const auto x = torch::tensor({{0.0},
                                {0.5},
                                {-1.0},
                                {2.0},
                                {1.5},
                                {-3.0},
                                {0.7},
                                {-0.2},
                                {1.0},
                                {1.0},
                                {0.1},
                                {0.2},
                                {-0.3},
                                {0.4},
                                {0.9},
                                {0.0}},
                               torch::kDouble);
  const auto t =
      torch::tensor({0, -1, -1, -1, -1, -1, -1, -2, 0, 0, -1, -1, -1, -1, -1, -2}, torch::kLong);
  OhemOptions o;
  o.images = 2;
  const auto kept = ohem_select(x, t, o);
  // Image 0's negatives by logit: 2.0 (3), 1.5 (4), 0.7 (6), 0.5 (1), ... -> keep 3, 4, 6.
  const auto want =
      torch::tensor({0, -2, -2, -1, -1, -2, -1, -2, 0, 0, -1, -1, -1, -1, -1, -2}, torch::kLong);
  EXPECT_TRUE(torch::equal(kept, want)) << kept;

  // The loss is the plain BCE over what was kept.
  const auto keep_mask = want.ne(-2).to(torch::kDouble).unsqueeze(1);
  const auto target = want.eq(0).to(torch::kDouble).unsqueeze(1);
  const double bce =
      (torch::binary_cross_entropy_with_logits(x, target, {}, {}, at::Reduction::None) * keep_mask)
          .sum()
          .item<double>();
  EXPECT_NEAR(ohem_loss(x, t, o).item<double>(), bce, 1e-12);
}

TEST(Ohem, RatioAndImagesWithoutObjects) {
  const auto x = torch::tensor({{3.0}, {2.0}, {1.0}, {0.0}}, torch::kDouble);
  const auto t = torch::tensor({-1, -1, -1, -1}, torch::kLong);
  // No positives: as in SSD, no negatives are kept.
  EXPECT_EQ(ohem_select(x, t, {}).ne(-2).sum().item<int64_t>(), 0);
  OhemOptions o;
  o.neg_pos_ratio = 1.0;
  const auto t2 = torch::tensor({0, -1, -1, -1}, torch::kLong);
  const auto kept = ohem_select(x, t2, o);
  EXPECT_TRUE(torch::equal(kept, torch::tensor({0, -1, -2, -2}, torch::kLong))) << kept;
}

TEST(LossNormalizer, NumPositivesAndEma) {
  LossNormalizer plain;
  EXPECT_EQ(plain.update(0), 1.0);
  EXPECT_EQ(plain.update(17), 17.0);
  // detectron2: 0.9 * 100 + 0.1 * 10 = 91, then 0.9 * 91 + 0.1 * max(0, 1) = 82.
  LossNormalizer ema(NormalizerKind::Ema);
  EXPECT_DOUBLE_EQ(ema.update(10), 91.0);
  EXPECT_DOUBLE_EQ(ema.update(0), 82.0);
  EXPECT_THROW(LossNormalizer(NormalizerKind::Ema, 1.5), Error);
  EXPECT_THROW(parse_normalizer("median"), Error);
}

// Every loss of the family through classification_loss: finite-difference gradients, the
// breakdown summing to the total, and normalisation.
class EveryLoss : public ::testing::TestWithParam<ClsLossKind> {};

TEST_P(EveryLoss, GradientMatchesFiniteDifferencesAndBreakdownSums) {
  const auto kind = GetParam();
  ClsLossOptions o;
  o.kind = kind;
  const int64_t classes = 3;
  const int64_t k = logits_per_anchor(kind, classes);
  torch::manual_seed(21);
  const auto x0 = torch::randn({2, 9, k}, torch::kDouble) * 2;
  const auto t = random_targets(18, classes, 22).view({2, 9});
  const double normalizer = 3.0;
  auto f = [&](const torch::Tensor& x) {
    return classification_loss(x, t, o, normalizer).item<double>();
  };
  const auto x = x0.clone().requires_grad_(true);
  LossBreakdown b;
  const auto loss = classification_loss(x, t, o, normalizer, &b);
  loss.backward();
  const auto numeric = test::finite_difference_grad(f, x0);
  EXPECT_TRUE(torch::allclose(x.grad(), numeric, 1e-6, 1e-8)) << to_string(kind);
  EXPECT_NEAR(b.total(), loss.item<double>(), 1e-12) << to_string(kind);
  EXPECT_EQ(b.num_pos, t.ge(0).sum().item<int64_t>());
  EXPECT_GE(b.easy_neg_share(), 0.0);
  EXPECT_LE(b.easy_neg_share(), 1.0);
}

INSTANTIATE_TEST_SUITE_P(Family, EveryLoss,
                         ::testing::Values(ClsLossKind::Focal, ClsLossKind::CE,
                                           ClsLossKind::AlphaCE, ClsLossKind::OHEM,
                                           ClsLossKind::SoftmaxFocal),
                         [](const auto& info) { return std::string(to_string(info.param)); });

// Whether the autograd graph behind `t` holds the fused kernel's function (its node's name).
bool runs_fused_kernel(const torch::Tensor& t) {
  std::vector<torch::autograd::Node*> todo = {t.grad_fn().get()};
  std::set<torch::autograd::Node*> seen;
  while (!todo.empty()) {
    torch::autograd::Node* node = todo.back();
    todo.pop_back();
    if (node == nullptr || !seen.insert(node).second) continue;
    if (node->name().find("SigmoidFocalFunction") != std::string::npos) return true;
    for (const auto& edge : node->next_edges()) todo.push_back(edge.function.get());
  }
  return false;
}

// What runs on CUDA: the sigmoid losses as tensor ops (the fused kernel reads CPU memory).
// `fused = false` takes that path on the CPU, and it must give the fused kernel's loss,
// gradient and breakdown, in the detector's [B, A, K] shape with a normaliser, in float32 (what
// training uses) and float64.
class TensorOpPath : public ::testing::TestWithParam<ClsLossKind> {};

TEST_P(TensorOpPath, GivesTheFusedLossGradientAndBreakdown) {
  for (const auto dtype : {torch::kFloat, torch::kDouble}) {
    ClsLossOptions fused, ops;
    fused.kind = ops.kind = GetParam();
    ops.fused = false;
    torch::manual_seed(41);
    // Mostly confident background, as in a trained detector: easy and hard negatives both.
    const auto x0 = (torch::randn({2, 600, 4}, torch::kDouble) * 3 - 5).to(dtype);
    const auto t = random_targets(1200, 4, 42).view({2, 600});
    const auto xf = x0.clone().requires_grad_(true), xo = x0.clone().requires_grad_(true);
    LossBreakdown bf, bo;
    const auto lf = classification_loss(xf, t, fused, 7.0, &bf);
    const auto lo = classification_loss(xo, t, ops, 7.0, &bo);
    const std::string what = std::string(to_string(GetParam())) + " " + c10::toString(dtype);
    // The option really switches the path (else this test would compare a path with itself).
    EXPECT_TRUE(runs_fused_kernel(lf)) << what;
    EXPECT_FALSE(runs_fused_kernel(lo)) << what;
    lf.backward();
    lo.backward();
    // float32: ~5k terms summed in another order, exp and log of another implementation.
    const double rtol = dtype == torch::kFloat ? 1e-5 : 1e-12;
    const double total = lf.item<double>();
    EXPECT_NEAR(lo.item<double>(), total, rtol * total) << what;
    EXPECT_TRUE(
        torch::allclose(xo.grad(), xf.grad(), rtol, rtol * xf.grad().abs().max().item<double>()))
        << what << ": max difference " << (xo.grad() - xf.grad()).abs().max().item<double>();
    EXPECT_NEAR(bo.loss_pos, bf.loss_pos, rtol * total) << what;
    EXPECT_NEAR(bo.loss_neg_hard, bf.loss_neg_hard, rtol * total) << what;
    EXPECT_NEAR(bo.loss_neg_easy, bf.loss_neg_easy, rtol * total) << what;
    EXPECT_EQ(bo.num_pos, bf.num_pos) << what;
    EXPECT_EQ(bo.num_neg_hard, bf.num_neg_hard) << what;
    EXPECT_EQ(bo.num_neg_easy, bf.num_neg_easy) << what;
    EXPECT_EQ(bo.num_ignored, bf.num_ignored) << what;
    EXPECT_GT(bf.num_neg_easy, 0) << what;
    EXPECT_GT(bf.num_neg_hard, 0) << what;
  }
}

INSTANTIATE_TEST_SUITE_P(SigmoidLosses, TensorOpPath,
                         ::testing::Values(ClsLossKind::Focal, ClsLossKind::CE,
                                           ClsLossKind::AlphaCE, ClsLossKind::OHEM),
                         [](const auto& info) { return std::string(to_string(info.param)); });

TEST(ClassificationLoss, KindsMapToTheirDefinitions) {
  torch::manual_seed(31);
  const auto x = torch::randn({1, 20, 3}, torch::kDouble);
  const auto t = random_targets(20, 3, 32).view({1, 20});
  auto run = [&](ClsLossKind kind, double alpha, double gamma) {
    ClsLossOptions o;
    o.kind = kind;
    o.alpha = alpha;
    o.gamma = gamma;
    return classification_loss(x, t, o, 4.0).item<double>();
  };
  auto ref = [&](double alpha, double gamma) {
    return test::focal_reference(x[0], t[0], alpha, gamma).sum().item<double>() / 4.0;
  };
  EXPECT_NEAR(run(ClsLossKind::Focal, 0.25, 2), ref(0.25, 2), 1e-12);
  EXPECT_NEAR(run(ClsLossKind::CE, 0.25, 2), ref(-1, 0), 1e-12);         // alpha, gamma unused
  EXPECT_NEAR(run(ClsLossKind::AlphaCE, 0.25, 2), ref(0.25, 0), 1e-12);  // gamma unused
}

TEST(ClassificationLoss, ParsesNamesAndRejectsUnknown) {
  EXPECT_EQ(parse_cls_loss("alpha_ce"), ClsLossKind::AlphaCE);
  EXPECT_EQ(parse_cls_loss("softmax_focal"), ClsLossKind::SoftmaxFocal);
  try {
    parse_cls_loss("focall");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'focall'"), std::string::npos);
  }
  EXPECT_THROW(classification_loss(torch::zeros({2, 3}), torch::zeros({2}, torch::kLong), {}, 1.0),
               Error);
  EXPECT_THROW(
      classification_loss(torch::zeros({1, 2, 3}), torch::zeros({1, 2}, torch::kLong), {}, 0.0),
      Error);
}

}  // namespace
}  // namespace focaldet::loss
