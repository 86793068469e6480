#pragma once
// How the classification loss is spread over samples (Lin et al. 2017, sec. 3.2 and Fig. 4):
// for each gamma, the cumulative loss of positives and of negatives, samples sorted from
// easiest (highest p_t) to hardest, each group normalised by its own total.
//
// A sample is one sigmoid term: with C classes an anchor gives C of them. On an anchor whose
// target is class t, the term of class t is a positive and the other C - 1 are negatives; every
// term of a background anchor is a negative; ignored anchors give none. With z_t = +x for a
// positive and -x for a negative (x the logit), p_t = sigmoid(z_t) and the focal loss without
// alpha is (1 - p_t)^gamma * -log(p_t). alpha is constant within a group, so it cancels after
// normalisation.
//
// Every gamma's loss is a function of z_t alone, so the samples need not be kept (COCO gives
// ~10^10 per split): they are streamed into fine uniform bins of z_t, each holding its count and
// the exact sum of every gamma's loss, in double. The curves are exact at bin edges (linear in
// between) and the totals are exact.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace focaldet::report {

enum class SampleGroup { Positive = 0, Negative = 1 };
const char* to_string(SampleGroup group);  // "positive" | "negative"

struct LossDistributionOptions {
  std::vector<double> gammas = {0, 0.5, 1, 2, 5};  // Fig. 4's; each finite and >= 0
  // Bins of z_t = logit(p_t): p_t from 4e-18 to 1 - 4e-18 in steps far finer than any
  // sample's loss changes over. Samples beyond the ends count in the end bins (their loss is
  // still summed exactly).
  double z_min = -40, z_max = 40, bin_width = 1e-3;
  double easy_p_t = 0.9;  // "easy" samples: p_t >= this (the logger's easy negatives)
};

// The cumulative loss of one group for one gamma as a piecewise linear curve through the bin
// edges: fraction[k] of the group's samples, the easiest first, carry loss[k] of its loss.
struct CumulativeCurve {
  std::vector<double> fraction;  // ascending, from 0 to 1
  std::vector<double> loss;      // non-decreasing, from 0 to 1

  bool empty() const { return fraction.empty(); }
  // The share of the loss carried by the easiest `x` of the samples (x in [0, 1]); NaN for a
  // group without samples or without loss.
  double at(double x) const;
  // The smallest fraction of the easiest samples that carries `share` of the loss; NaN as above.
  double fraction_for(double share) const;
};

class LossDistribution {
 public:
  // Throws focaldet::Error for a gamma that is negative or not finite, or bad bins.
  explicit LossDistribution(const LossDistributionOptions& options = {});

  // logits: [M, C] float or double (any device; read on the CPU); targets: [M] int64, class
  // index in [0, C), kBackground or kIgnore (common/targets.h). Adds their M * C samples.
  void add(const at::Tensor& logits, const at::Tensor& targets);

  const LossDistributionOptions& options() const { return options_; }
  const std::vector<double>& gammas() const { return options_.gammas; }
  int64_t num_samples(SampleGroup group) const;
  // Sum over the group's samples of (1 - p_t)^gamma * -log(p_t), gammas()[gamma_index].
  double total_loss(SampleGroup group, size_t gamma_index) const;
  // The same over its easy samples (p_t >= options().easy_p_t).
  double easy_loss(SampleGroup group, size_t gamma_index) const;
  CumulativeCurve curve(SampleGroup group, size_t gamma_index) const;

 private:
  size_t loss_index(SampleGroup group, size_t gamma_index, size_t bin) const;

  LossDistributionOptions options_;
  int64_t num_bins_;
  std::vector<int64_t> counts_;  // [group][bin]
  std::vector<double> losses_;   // [group][bin][gamma]
  std::vector<double> easy_;     // [group][gamma]
};

// For one gamma, what Fig. 4 shows in numbers.
struct LossShares {
  double gamma = 0;
  int64_t num_pos = 0, num_neg = 0;
  // Share of the negatives' loss carried by their hardest 1%, 5%, 10% and 20%.
  double neg_hardest_1 = 0, neg_hardest_5 = 0, neg_hardest_10 = 0, neg_hardest_20 = 0;
  double easy_neg_share = 0;  // share of the negatives' loss carried by easy ones (p_t >= 0.9)
  // The fraction of the hardest positives that carries half of the positives' loss (the paper:
  // about 0.2 at gamma 0).
  double pos_fraction_for_half_loss = 0;
};

// NaN where a group has no samples (or no loss).
LossShares loss_shares(const LossDistribution& distribution, size_t gamma_index);

// The share of the loss carried by the hardest `fraction` of the samples: 1 - at(1 - fraction).
double hardest_share(const CumulativeCurve& curve, double fraction);

// Where to sample the curves for tables and plots: ~250 fractions in [0, 1], uniform with a
// step of 0.005 and denser (log-spaced down to 1e-4) near 0 and near 1, where Fig. 4's curves
// bend; 0.001, 0.01, 0.99 and 0.999 among them.
std::vector<double> curve_fractions();

}  // namespace focaldet::report
