// The loss distribution of `focaldet analyze-loss` (Lin et al. 2017, Fig. 4): curves end at 1
// and rise monotonically, gamma 0 is cross-entropy's curve computed independently (every term
// kept, sorted, summed in double), shares computed by hand on a tiny input, ignored anchors left
// out, and gamma 2 concentrating the negatives' loss on few samples.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <vector>

#include "common/error.h"
#include "common/targets.h"
#include "report/loss_distribution.h"

using focaldet::kBackground;
using focaldet::kIgnore;
using focaldet::report::CumulativeCurve;
using focaldet::report::curve_fractions;
using focaldet::report::LossDistribution;
using focaldet::report::LossDistributionOptions;
using focaldet::report::LossShares;
using focaldet::report::SampleGroup;

namespace {

// Anchors with random logits and targets: a third background, a tenth ignored, the rest one of
// `classes` classes. Logits spread over +-15 so that both tails are populated.
struct Sample {
  torch::Tensor logits;   // [M, C] float
  torch::Tensor targets;  // [M] int64
};

Sample random_sample(int64_t anchors, int64_t classes, uint64_t seed) {
  torch::manual_seed(seed);
  Sample s;
  s.logits = torch::randn({anchors, classes}) * 4 - 2;
  const torch::Tensor u = torch::rand({anchors});
  s.targets = torch::randint(0, classes, {anchors}, torch::kLong);
  s.targets.masked_fill_(u < 0.33, kBackground);
  s.targets.masked_fill_(u > 0.9, kIgnore);
  return s;
}

// The independent oracle: every term's torch BCE-with-logits loss in double, the group's terms
// sorted from easiest (lowest loss) to hardest, cumulated, normalised; the curve through
// (k / n, S_k / S_n), linear in between.
struct ExactCurve {
  std::vector<double> cumulative;  // S_0 = 0 .. S_n
  double at(double x) const {
    const double n = static_cast<double>(cumulative.size() - 1);
    const double pos = x * n;
    const auto k = std::min(static_cast<size_t>(pos), cumulative.size() - 2);
    const double y = cumulative[k] + (pos - k) * (cumulative[k + 1] - cumulative[k]);
    return y / cumulative.back();
  }
};

ExactCurve exact_ce_curve(const Sample& s, SampleGroup group) {
  const int64_t classes = s.logits.size(1);
  const torch::Tensor kept = s.targets != kIgnore;
  const torch::Tensor x = s.logits.index({kept}).to(torch::kDouble);
  const torch::Tensor t = s.targets.index({kept});
  const torch::Tensor onehot =
      (t.unsqueeze(1) == torch::arange(classes, torch::kLong).unsqueeze(0)).to(torch::kDouble);
  const torch::Tensor loss = torch::binary_cross_entropy_with_logits(
      x, onehot, /*weight=*/{}, /*pos_weight=*/{}, at::Reduction::None);
  const torch::Tensor in_group = group == SampleGroup::Positive ? onehot > 0.5 : onehot < 0.5;
  const torch::Tensor sorted = std::get<0>(loss.index({in_group}).sort());
  const torch::Tensor cum = torch::cat({torch::zeros({1}, torch::kDouble), sorted.cumsum(0)});
  ExactCurve c;
  c.cumulative.assign(cum.data_ptr<double>(), cum.data_ptr<double>() + cum.numel());
  return c;
}

// log(1 + exp(-z)) = -log(p_t) and (1 - p_t)^gamma, written out by hand.
double focal(double z_t, double gamma) {
  const double q = 1 / (1 + std::exp(z_t));
  return std::pow(q, gamma) * std::log1p(std::exp(-z_t));
}

size_t gamma_index(const LossDistribution& d, double gamma) {
  for (size_t i = 0; i < d.gammas().size(); ++i)
    if (d.gammas()[i] == gamma) return i;
  ADD_FAILURE() << "no gamma " << gamma;
  return 0;
}

}  // namespace

TEST(LossDistribution, CurvesStartAtZeroEndAtOneAndAreMonotone) {
  const Sample s = random_sample(/*anchors=*/3000, /*classes=*/4, /*seed=*/1);
  LossDistribution d;
  d.add(s.logits, s.targets);
  for (size_t g = 0; g < d.gammas().size(); ++g) {
    for (SampleGroup group : {SampleGroup::Positive, SampleGroup::Negative}) {
      const CumulativeCurve c = d.curve(group, g);
      ASSERT_FALSE(c.empty());
      // The last point is the total over itself, summed in the same order: exactly 1.
      EXPECT_EQ(c.loss.back(), 1.0);
      EXPECT_EQ(c.fraction.back(), 1.0);
      EXPECT_EQ(c.at(0), 0.0);
      EXPECT_EQ(c.at(1), 1.0);
      double previous = 0;
      for (double x : curve_fractions()) {
        const double y = c.at(x);
        EXPECT_GE(y, previous) << "gamma " << d.gammas()[g] << " at " << x;
        EXPECT_LE(y, 1.0);
        previous = y;
      }
      for (size_t k = 1; k < c.loss.size(); ++k) {
        EXPECT_GE(c.loss[k], c.loss[k - 1]);
        EXPECT_GT(c.fraction[k], c.fraction[k - 1]);
      }
    }
  }
}

// Acceptance: gamma = 0 reproduces plain cross-entropy's curve.
TEST(LossDistribution, GammaZeroEqualsTheExactCrossEntropyCurve) {
  const Sample s = random_sample(/*anchors=*/20000, /*classes=*/3, /*seed=*/2);
  LossDistribution d;
  d.add(s.logits, s.targets);
  const size_t g0 = gamma_index(d, 0);
  for (SampleGroup group : {SampleGroup::Positive, SampleGroup::Negative}) {
    const ExactCurve want = exact_ce_curve(s, group);
    const CumulativeCurve got = d.curve(group, g0);
    EXPECT_EQ(d.num_samples(group), static_cast<int64_t>(want.cumulative.size() - 1));
    // Totals: the same terms summed in double, in another order.
    EXPECT_NEAR(d.total_loss(group, g0), want.cumulative.back(), 1e-10 * want.cumulative.back());
    // Between bin edges the curve is a chord over the samples of one bin, whose z_t lie within
    // 1e-3 of each other, so their losses within 1e-3 (|dloss/dz| <= 1): a few such samples
    // against a total of thousands leave errors far below 1e-6.
    for (double x : curve_fractions()) {
      EXPECT_NEAR(got.at(x), want.at(x), 1e-6) << to_string(group) << " at " << x;
    }
  }
}

TEST(LossDistribution, SharesOnATinyInputMatchAHandComputation) {
  // One class. Background anchors with logits -5..4 (z_t = 5..-4, the hardest has z_t = -4),
  // object anchors with logits 3, 1, 0, -2, and an ignored anchor that would be the hardest
  // negative by far.
  std::vector<float> logits = {-5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 3, 1, 0, -2, 12};
  std::vector<int64_t> targets(10, kBackground);
  targets.insert(targets.end(), {0, 0, 0, 0, kIgnore});
  LossDistribution d;
  d.add(torch::tensor(logits).view({-1, 1}), torch::tensor(targets));
  for (double gamma : {0.0, 2.0}) {
    SCOPED_TRACE("gamma " + std::to_string(gamma));
    const LossShares s = loss_shares(d, gamma_index(d, gamma));
    EXPECT_EQ(s.num_pos, 4);
    EXPECT_EQ(s.num_neg, 10);
    double neg_total = 0;
    for (int z = -4; z <= 5; ++z) neg_total += focal(z, gamma);
    const double hardest = focal(-4, gamma), second = focal(-3, gamma);
    // One sample in ten is 10%; 5% and 1% are half and a tenth of the hardest one (linear
    // within its bin).
    EXPECT_NEAR(s.neg_hardest_10, hardest / neg_total, 1e-12);
    EXPECT_NEAR(s.neg_hardest_20, (hardest + second) / neg_total, 1e-12);
    EXPECT_NEAR(s.neg_hardest_5, 0.5 * hardest / neg_total, 1e-12);
    EXPECT_NEAR(s.neg_hardest_1, 0.1 * hardest / neg_total, 1e-12);
    // Easy: p_t >= 0.9, i.e. z_t >= log(9) = 2.2: z_t = 3, 4, 5.
    EXPECT_NEAR(s.easy_neg_share, (focal(3, gamma) + focal(4, gamma) + focal(5, gamma)) / neg_total,
                1e-12);
    EXPECT_NEAR(d.total_loss(SampleGroup::Negative, gamma_index(d, gamma)), neg_total,
                1e-12 * neg_total);
    // Positives z_t = 3, 1, 0, -2: the hardest (z_t = -2) alone carries more than half, so half
    // is carried by the part of its quarter that holds half the total.
    const double pos_total = focal(3, gamma) + focal(1, gamma) + focal(0, gamma) + focal(-2, gamma);
    EXPECT_NEAR(s.pos_fraction_for_half_loss, 0.25 * (0.5 * pos_total) / focal(-2, gamma), 1e-12);
  }
}

TEST(LossDistribution, IgnoredAnchorsAreLeftOut) {
  const Sample s = random_sample(/*anchors=*/500, /*classes=*/3, /*seed=*/3);
  // The same anchors plus 200 ignored ones with extreme logits.
  const torch::Tensor extra_logits = torch::randn({200, 3}) * 30;
  const torch::Tensor extra_targets = torch::full({200}, kIgnore, torch::kLong);
  LossDistribution with, without;
  without.add(s.logits, s.targets);
  with.add(torch::cat({s.logits, extra_logits}), torch::cat({s.targets, extra_targets}));
  // An anchor of class t gives 1 positive and C - 1 negatives; a background one C negatives.
  const int64_t objects = (s.targets >= 0).sum().item<int64_t>();
  const int64_t background = (s.targets == kBackground).sum().item<int64_t>();
  EXPECT_EQ(with.num_samples(SampleGroup::Positive), objects);
  EXPECT_EQ(with.num_samples(SampleGroup::Negative), 2 * objects + 3 * background);
  for (size_t g = 0; g < with.gammas().size(); ++g) {
    for (SampleGroup group : {SampleGroup::Positive, SampleGroup::Negative}) {
      EXPECT_EQ(with.num_samples(group), without.num_samples(group));
      // Same samples, same bins, same order of summation: the same doubles.
      EXPECT_EQ(with.total_loss(group, g), without.total_loss(group, g));
      EXPECT_EQ(with.curve(group, g).loss, without.curve(group, g).loss);
    }
  }
}

TEST(LossDistribution, AddingBatchByBatchEqualsAddingAtOnce) {
  const Sample s = random_sample(/*anchors=*/4000, /*classes=*/3, /*seed=*/4);
  LossDistribution whole, pieces;
  whole.add(s.logits, s.targets);
  for (int64_t begin = 0; begin < 4000; begin += 1000)
    pieces.add(s.logits.slice(0, begin, begin + 1000), s.targets.slice(0, begin, begin + 1000));
  for (size_t g = 0; g < whole.gammas().size(); ++g) {
    for (SampleGroup group : {SampleGroup::Positive, SampleGroup::Negative}) {
      EXPECT_EQ(whole.num_samples(group), pieces.num_samples(group));
      const double total = whole.total_loss(group, g);
      // Bin sums in another order: rounding only.
      EXPECT_NEAR(pieces.total_loss(group, g), total, 1e-12 * total);
      for (double x : {0.01, 0.5, 0.9, 0.99})
        EXPECT_NEAR(pieces.curve(group, g).at(x), whole.curve(group, g).at(x), 1e-12);
    }
  }
}

// Over 2^21 samples the work is split into one task per thread, each with its own bins.
TEST(LossDistribution, ThreadedAddEqualsOneThread) {
  const Sample s = random_sample(/*anchors=*/800000, /*classes=*/3, /*seed=*/6);
  const int threads = at::get_num_threads();
  LossDistribution one, many;
  at::set_num_threads(1);
  one.add(s.logits, s.targets);
  at::set_num_threads(4);
  many.add(s.logits, s.targets);
  at::set_num_threads(threads);
  for (size_t g = 0; g < one.gammas().size(); ++g) {
    for (SampleGroup group : {SampleGroup::Positive, SampleGroup::Negative}) {
      EXPECT_EQ(many.num_samples(group), one.num_samples(group));
      const double total = one.total_loss(group, g);
      EXPECT_NEAR(many.total_loss(group, g), total, 1e-12 * total);  // rounding only
      EXPECT_NEAR(many.easy_loss(group, g), one.easy_loss(group, g), 1e-12 * total);
      for (double x : {0.01, 0.5, 0.99})
        EXPECT_NEAR(many.curve(group, g).at(x), one.curve(group, g).at(x), 1e-12);
    }
  }
}

// The paper's observation, on a synthetic input: many easy negatives and a few hard ones.
// Focusing (gamma 2) moves the negatives' loss onto the hard few, and away from the easy ones.
TEST(LossDistribution, GammaTwoConcentratesTheNegativesLossOnTheHardest) {
  torch::manual_seed(5);
  const torch::Tensor easy = torch::randn({9800, 1}) - 4;  // p ~ 0.02: p_t ~ 0.98
  const torch::Tensor hard = torch::randn({200, 1});       // p ~ 0.5
  LossDistribution d;
  d.add(torch::cat({easy, hard}), torch::full({10000}, kBackground, torch::kLong));
  const LossShares ce = loss_shares(d, gamma_index(d, 0));
  const LossShares fl = loss_shares(d, gamma_index(d, 2));
  EXPECT_GT(fl.neg_hardest_1, ce.neg_hardest_1);
  // Thresholds from the same mixture in double: 0.87 and 0.27 at seed 0 of Python's random.
  EXPECT_GT(fl.neg_hardest_1, 0.6);  // the hardest 1% carry most of it
  EXPECT_LT(ce.neg_hardest_1, 0.4);  // under CE the many easy ones still weigh
  EXPECT_LT(fl.easy_neg_share, ce.easy_neg_share);
  EXPECT_TRUE(std::isnan(fl.pos_fraction_for_half_loss));  // no positives: nothing to say
}

// Numbers from the logits themselves, not from p: p_t = 1 - 1e-12 keeps its loss of 1e-12.
TEST(LossDistribution, ConfidentSamplesKeepTheirTinyLoss) {
  LossDistribution d;
  d.add(torch::tensor({-27.6310211f}).view({1, 1}), torch::tensor({kBackground}));
  EXPECT_NEAR(d.total_loss(SampleGroup::Negative, gamma_index(d, 0)), 1e-12, 1e-16);
}

TEST(LossDistribution, CurveFractionsAreDenseNearBothEnds) {
  const std::vector<double> x = curve_fractions();
  EXPECT_GE(x.size(), 200u);
  EXPECT_LE(x.size(), 400u);
  EXPECT_EQ(x.front(), 0.0);
  EXPECT_EQ(x.back(), 1.0);
  for (size_t i = 1; i < x.size(); ++i) EXPECT_GT(x[i], x[i - 1]);
  for (double want : {1e-4, 1e-3, 0.01, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999}) {
    bool found = false;
    for (double v : x) found = found || std::abs(v - want) < 1e-12;
    EXPECT_TRUE(found) << want;
  }
}

TEST(LossDistribution, BadInputIsAnError) {
  LossDistributionOptions negative_gamma;
  negative_gamma.gammas = {0, -1};
  EXPECT_THROW(LossDistribution{negative_gamma}, focaldet::Error);
  LossDistribution d;
  const torch::Tensor logits = torch::zeros({2, 3});
  EXPECT_THROW(d.add(logits, torch::tensor({int64_t{0}, int64_t{3}})), focaldet::Error);
  EXPECT_THROW(d.add(logits, torch::tensor({int64_t{0}, int64_t{-3}})), focaldet::Error);
  EXPECT_THROW(d.add(logits, torch::tensor({0, 1}).to(torch::kInt)), focaldet::Error);
  EXPECT_THROW(d.add(torch::full({1, 3}, NAN), torch::tensor({kBackground})), focaldet::Error);
  EXPECT_EQ(d.num_samples(SampleGroup::Negative), 0);
}
