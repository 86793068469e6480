#include "report/loss_distribution.h"

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "common/error.h"
#include "common/targets.h"

namespace focaldet::report {
namespace {

constexpr size_t kGroups = 2;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Samples per task: enough that a task's own bins (zeroed, then merged) pay for themselves.
constexpr int64_t kSamplesPerTask = 1 << 20;

// One task's bins, merged into the distribution's after the parallel loop. Same layout.
struct Partial {
  std::vector<int64_t> counts;  // [group][bin]
  std::vector<double> losses;   // [group][bin][gamma]
  std::vector<double> easy;     // [group][gamma]
  int64_t non_finite = 0;
};

// Adds rows [begin, end) of `x` ([M, C]) to `p`. For one sample, with z = z_t and e = exp(-|z|):
//   -log(p_t)     = softplus(-z) = max(-z, 0) + log1p(e)
//   (1 - p_t)^g   = exp(-g * softplus(z)),  softplus(z) = max(z, 0) + log1p(e)
// so no term overflows or loses precision for any finite logit, and p_t = 1 - 1e-12 still
// has its loss (1e-12) rather than log(1 - p) rounded to 0.
template <typename T>
void accumulate(const T* x, const int64_t* targets, int64_t classes, int64_t begin, int64_t end,
                const LossDistributionOptions& o, int64_t num_bins, Partial& p) {
  const size_t num_gammas = o.gammas.size();
  const double* gammas = o.gammas.data();
  const double easy_z = std::log(o.easy_p_t / (1 - o.easy_p_t));
  const double inv_width = 1.0 / o.bin_width;
  for (int64_t row = begin; row < end; ++row) {
    const int64_t target = targets[row];
    if (target == kIgnore) continue;
    const T* logits = x + row * classes;
    for (int64_t c = 0; c < classes; ++c) {
      const bool positive = c == target;
      const double logit = static_cast<double>(logits[c]);
      if (!std::isfinite(logit)) {
        ++p.non_finite;
        continue;
      }
      const double z = positive ? logit : -logit;
      const double l1p = std::log1p(std::exp(-std::abs(z)));
      const double neg_log_pt = std::max(-z, 0.0) + l1p;
      const double neg_log_qt = std::max(z, 0.0) + l1p;  // -log(1 - p_t)
      const double t = (z - o.z_min) * inv_width;
      const int64_t bin = t < 0                                ? 0
                          : t >= static_cast<double>(num_bins) ? num_bins - 1
                                                               : static_cast<int64_t>(t);
      const size_t group = positive ? 0 : 1;
      ++p.counts[group * num_bins + bin];
      double* losses = &p.losses[(group * num_bins + bin) * num_gammas];
      double* easy = z >= easy_z ? &p.easy[group * num_gammas] : nullptr;
      for (size_t g = 0; g < num_gammas; ++g) {
        // gamma 0 is plain cross-entropy: (1 - p_t)^0 = 1 even where 1 - p_t rounds to 0.
        const double loss =
            gammas[g] == 0 ? neg_log_pt : std::exp(-gammas[g] * neg_log_qt) * neg_log_pt;
        losses[g] += loss;
        if (easy) easy[g] += loss;
      }
    }
  }
}

}  // namespace

const char* to_string(SampleGroup group) {
  return group == SampleGroup::Positive ? "positive" : "negative";
}

LossDistribution::LossDistribution(const LossDistributionOptions& options) : options_(options) {
  check(!options_.gammas.empty(), "loss distribution: no gammas");
  for (double g : options_.gammas) {
    check(std::isfinite(g) && g >= 0,
          "loss distribution: gamma must be a finite number >= 0, got " + std::to_string(g));
  }
  check(options_.bin_width > 0 && options_.z_max > options_.z_min,
        "loss distribution: bins need bin_width > 0 and z_max > z_min");
  check(options_.easy_p_t > 0 && options_.easy_p_t < 1,
        "loss distribution: easy_p_t must be in (0, 1)");
  num_bins_ = static_cast<int64_t>(
      std::ceil((options_.z_max - options_.z_min) / options_.bin_width - 1e-9));
  counts_.assign(kGroups * num_bins_, 0);
  losses_.assign(kGroups * num_bins_ * options_.gammas.size(), 0.0);
  easy_.assign(kGroups * options_.gammas.size(), 0.0);
}

size_t LossDistribution::loss_index(SampleGroup group, size_t gamma_index, size_t bin) const {
  return (static_cast<size_t>(group) * num_bins_ + bin) * options_.gammas.size() + gamma_index;
}

void LossDistribution::add(const at::Tensor& logits, const at::Tensor& targets) {
  check(logits.dim() == 2, "loss distribution: logits must be [M, C], got " +
                               std::to_string(logits.dim()) + " dimensions");
  check(targets.dim() == 1 && targets.size(0) == logits.size(0),
        "loss distribution: targets must be [M] with M = logits.size(0)");
  check(targets.scalar_type() == at::kLong, "loss distribution: targets must be int64");
  const int64_t rows = logits.size(0), classes = logits.size(1);
  if (rows == 0 || classes == 0) return;
  at::Tensor x = logits.detach().cpu();
  if (x.scalar_type() != at::kFloat && x.scalar_type() != at::kDouble) x = x.to(at::kFloat);
  x = x.contiguous();
  const at::Tensor t = targets.cpu().contiguous();
  const at::Tensor valid = ((t >= 0) & (t < classes)) | (t == kBackground) | (t == kIgnore);
  check(valid.all().item<bool>(), "loss distribution: targets must be a class index in [0, " +
                                      std::to_string(classes) +
                                      "), -1 (background) or -2 (ignored)");

  // Fixed tasks, each with its own bins, merged in task order: for a given number of threads the
  // sums do not depend on how the threads were scheduled.
  const int64_t tasks =
      std::clamp<int64_t>(rows * classes / kSamplesPerTask, 1, std::max(1, at::get_num_threads()));
  const int64_t rows_per_task = (rows + tasks - 1) / tasks;
  std::vector<Partial> partials(tasks);
  at::parallel_for(0, tasks, 1, [&](int64_t first, int64_t last) {
    for (int64_t task = first; task < last; ++task) {
      Partial& p = partials[task];
      p.counts.assign(counts_.size(), 0);
      p.losses.assign(losses_.size(), 0.0);
      p.easy.assign(easy_.size(), 0.0);
      const int64_t begin = task * rows_per_task, end = std::min(rows, begin + rows_per_task);
      AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "loss_distribution", [&] {
        accumulate<scalar_t>(x.data_ptr<scalar_t>(), t.data_ptr<int64_t>(), classes, begin, end,
                             options_, num_bins_, p);
      });
    }
  });
  int64_t non_finite = 0;
  for (const Partial& p : partials) non_finite += p.non_finite;
  check(non_finite == 0, "loss distribution: " + std::to_string(non_finite) +
                             " logits are NaN or infinite (did training diverge?)");
  for (const Partial& p : partials) {
    for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += p.counts[i];
    for (size_t i = 0; i < losses_.size(); ++i) losses_[i] += p.losses[i];
    for (size_t i = 0; i < easy_.size(); ++i) easy_[i] += p.easy[i];
  }
}

int64_t LossDistribution::num_samples(SampleGroup group) const {
  int64_t n = 0;
  for (int64_t b = 0; b < num_bins_; ++b) n += counts_[static_cast<size_t>(group) * num_bins_ + b];
  return n;
}

double LossDistribution::total_loss(SampleGroup group, size_t gamma_index) const {
  check(gamma_index < options_.gammas.size(), "loss distribution: gamma index out of range");
  // Easiest bin first, as curve() sums: its last point is then exactly 1.
  double total = 0;
  for (int64_t b = num_bins_ - 1; b >= 0; --b) total += losses_[loss_index(group, gamma_index, b)];
  return total;
}

double LossDistribution::easy_loss(SampleGroup group, size_t gamma_index) const {
  check(gamma_index < options_.gammas.size(), "loss distribution: gamma index out of range");
  return easy_[static_cast<size_t>(group) * options_.gammas.size() + gamma_index];
}

CumulativeCurve LossDistribution::curve(SampleGroup group, size_t gamma_index) const {
  const auto n = static_cast<double>(num_samples(group));
  const double total = total_loss(group, gamma_index);
  CumulativeCurve c;
  if (n == 0 || !(total > 0)) return c;
  c.fraction.push_back(0);
  c.loss.push_back(0);
  int64_t count = 0;
  double loss = 0;
  // The easiest samples have the highest z_t: the last bin first.
  for (int64_t b = num_bins_ - 1; b >= 0; --b) {
    const int64_t in_bin = counts_[static_cast<size_t>(group) * num_bins_ + b];
    if (in_bin == 0) continue;
    count += in_bin;
    loss += losses_[loss_index(group, gamma_index, b)];
    c.fraction.push_back(static_cast<double>(count) / n);
    c.loss.push_back(loss / total);
  }
  return c;
}

double CumulativeCurve::at(double x) const {
  if (empty() || std::isnan(x)) return kNaN;
  x = std::clamp(x, 0.0, 1.0);
  const auto upper = std::upper_bound(fraction.begin(), fraction.end(), x);
  if (upper == fraction.end()) return loss.back();
  const size_t k = static_cast<size_t>(upper - fraction.begin());  // fraction[k - 1] <= x
  // Linear within a bin: its samples' z_t are within bin_width, so their losses nearly equal.
  const double w = (x - fraction[k - 1]) / (fraction[k] - fraction[k - 1]);
  return loss[k - 1] + w * (loss[k] - loss[k - 1]);
}

double CumulativeCurve::fraction_for(double share) const {
  if (empty() || std::isnan(share)) return kNaN;
  share = std::clamp(share, 0.0, 1.0);
  const auto reached = std::lower_bound(loss.begin(), loss.end(), share);
  const size_t k = static_cast<size_t>(reached - loss.begin());
  if (k == 0) return 0;
  if (k == loss.size()) return 1;
  // loss[k - 1] < share <= loss[k]
  const double w = (share - loss[k - 1]) / (loss[k] - loss[k - 1]);
  return fraction[k - 1] + w * (fraction[k] - fraction[k - 1]);
}

double hardest_share(const CumulativeCurve& curve, double fraction) {
  return 1 - curve.at(1 - fraction);
}

LossShares loss_shares(const LossDistribution& d, size_t gamma_index) {
  LossShares s;
  s.gamma = d.gammas().at(gamma_index);
  s.num_pos = d.num_samples(SampleGroup::Positive);
  s.num_neg = d.num_samples(SampleGroup::Negative);
  const CumulativeCurve neg = d.curve(SampleGroup::Negative, gamma_index);
  s.neg_hardest_1 = hardest_share(neg, 0.01);
  s.neg_hardest_5 = hardest_share(neg, 0.05);
  s.neg_hardest_10 = hardest_share(neg, 0.10);
  s.neg_hardest_20 = hardest_share(neg, 0.20);
  s.easy_neg_share = neg.empty() ? kNaN
                                 : d.easy_loss(SampleGroup::Negative, gamma_index) /
                                       d.total_loss(SampleGroup::Negative, gamma_index);
  // Half the loss is carried by the hardest 1 - f where the easiest f carry the other half.
  s.pos_fraction_for_half_loss = 1 - d.curve(SampleGroup::Positive, gamma_index).fraction_for(0.5);
  return s;
}

std::vector<double> curve_fractions() {
  std::vector<double> x;
  for (int k = 0; k <= 200; ++k) x.push_back(k / 200.0);
  for (int i = 0; i <= 24; ++i) {
    const double f = std::pow(10.0, -4 + i / 8.0);  // 1e-4 .. 1e-1, 8 per decade
    x.push_back(f);
    x.push_back(1 - f);
  }
  std::sort(x.begin(), x.end());
  // 0.1 and 0.9 come from both lists, maybe an ulp apart.
  x.erase(std::unique(x.begin(), x.end(), [](double a, double b) { return b - a < 1e-12; }),
          x.end());
  return x;
}

}  // namespace focaldet::report
