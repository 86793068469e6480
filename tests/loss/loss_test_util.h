#pragma once
// Helpers shared by the loss tests: an independent long-double reference of the sigmoid focal
// loss, and central finite differences.
#include <torch/torch.h>

#include <cmath>
#include <functional>

namespace focaldet::test {

// -alpha_t (1 - p_t)^gamma log(p_t) for one logit, straight from the definition in long double;
// alpha < 0 means no alpha weighting. log(p_t) through log1p(exp(-|z|)) so +-100 stays exact.
inline long double focal_term_reference(long double x, bool positive, long double alpha,
                                        long double gamma) {
  const long double z = positive ? x : -x;
  const long double log_pt = -(std::max(-z, 0.0L) + std::log1p(std::exp(-std::fabs(z))));
  const long double one_minus_pt = 1.0L / (1.0L + std::exp(z));
  const long double alpha_t = alpha < 0 ? 1.0L : (positive ? alpha : 1.0L - alpha);
  return -alpha_t * std::pow(one_minus_pt, gamma) * log_pt;
}

// [N, C] reference losses (float64) for targets with -1 background and -2 ignored (zero rows).
inline torch::Tensor focal_reference(const torch::Tensor& logits, const torch::Tensor& targets,
                                     double alpha, double gamma) {
  const auto x = logits.to(torch::kDouble).contiguous();
  auto out = torch::zeros_like(x);
  auto xa = x.accessor<double, 2>();
  auto oa = out.accessor<double, 2>();
  auto ta = targets.accessor<int64_t, 1>();
  for (int64_t i = 0; i < x.size(0); ++i) {
    if (ta[i] == -2) continue;
    for (int64_t c = 0; c < x.size(1); ++c) {
      oa[i][c] = static_cast<double>(focal_term_reference(xa[i][c], c == ta[i], alpha, gamma));
    }
  }
  return out;
}

// d f / d x by central differences, float64, one element at a time.
inline torch::Tensor finite_difference_grad(const std::function<double(const torch::Tensor&)>& f,
                                            const torch::Tensor& x, double h = 1e-6) {
  auto base = x.detach().clone().to(torch::kDouble);
  auto grad = torch::zeros_like(base);
  auto flat = base.view({-1});
  auto g = grad.view({-1});
  for (int64_t i = 0; i < flat.numel(); ++i) {
    const double v = flat[i].item<double>();
    flat[i] = v + h;
    const double up = f(base);
    flat[i] = v - h;
    const double down = f(base);
    flat[i] = v;
    g[i] = (up - down) / (2 * h);
  }
  return grad;
}

// Random targets for N anchors and C classes: roughly 20% positives, 10% ignored, rest background.
inline torch::Tensor random_targets(int64_t n, int64_t classes, uint64_t seed) {
  torch::manual_seed(seed);
  auto u = torch::rand({n});
  auto t = torch::full({n}, -1, torch::kLong);
  t.masked_fill_(u < 0.1, -2);
  auto pos = u > 0.8;
  t.index_put_({pos}, torch::randint(classes, {pos.sum().item<int64_t>()}, torch::kLong));
  return t;
}

}  // namespace focaldet::test
