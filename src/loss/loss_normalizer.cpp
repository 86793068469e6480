#include "loss/loss_normalizer.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace focaldet::loss {

NormalizerKind parse_normalizer(const std::string& name) {
  if (name == "num_pos") return NormalizerKind::NumPositives;
  if (name == "ema") return NormalizerKind::Ema;
  throw Error("unknown loss normalizer '" + name + "' (expected num_pos or ema)");
}

LossNormalizer::LossNormalizer(NormalizerKind kind, double momentum, double initial)
    : kind_(kind), momentum_(momentum), value_(initial) {
  check(std::isfinite(momentum) && momentum >= 0 && momentum < 1,
        "loss normalizer: momentum must be in [0, 1), got " + std::to_string(momentum));
  check(std::isfinite(initial) && initial > 0,
        "loss normalizer: initial value must be > 0, got " + std::to_string(initial));
}

double LossNormalizer::update(double num_positives, int ranks) {
  const double n = std::max(num_positives, 1.0) / std::max(ranks, 1);
  value_ = kind_ == NormalizerKind::Ema ? momentum_ * value_ + (1 - momentum_) * n : n;
  return value_;
}

}  // namespace focaldet::loss
