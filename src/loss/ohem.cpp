#include "loss/ohem.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <cmath>

#include "common/error.h"
#include "common/targets.h"
#include "loss/sigmoid_focal.h"

namespace focaldet::loss {

torch::Tensor ohem_select(const torch::Tensor& logits, const torch::Tensor& targets,
                          const OhemOptions& options) {
  check(
      std::isfinite(options.neg_pos_ratio) && options.neg_pos_ratio >= 0,
      "ohem: neg_pos_ratio must be finite and >= 0, got " + std::to_string(options.neg_pos_ratio));
  check(options.images >= 1 && logits.dim() == 2 && logits.size(0) % options.images == 0,
        "ohem: the " + std::to_string(logits.dim() == 2 ? logits.size(0) : -1) +
            " rows of logits do not split into images = " + std::to_string(options.images));
  torch::NoGradGuard no_grad;
  FocalOptions ce;
  ce.alpha = -1;
  ce.gamma = 0;
  ce.reduction = Reduction::None;
  ce.fused = options.fused;
  // Per-anchor cross-entropy, summed over classes: the hardness OHEM ranks negatives by.
  // detach(): NoGradGuard alone leaves requires_grad set, and the fused kernel would also
  // compute a gradient nobody uses.
  const auto anchor_loss = sigmoid_focal_loss(logits.detach(), targets, ce).sum(1);
  auto kept = targets.clone();
  const int64_t per_image = logits.size(0) / options.images;
  for (int64_t b = 0; b < options.images; ++b) {
    const auto t = targets.narrow(0, b * per_image, per_image);
    const auto negative = t.eq(kBackground);
    const int64_t num_pos = t.ge(0).sum().item<int64_t>();
    const int64_t num_neg = negative.sum().item<int64_t>();
    const auto keep = std::min<int64_t>(
        num_neg,
        static_cast<int64_t>(std::floor(options.neg_pos_ratio * static_cast<double>(num_pos))));
    auto out = kept.narrow(0, b * per_image, per_image);
    out.masked_fill_(negative, kIgnore);  // drop every negative, then restore the hardest
    if (keep == 0) continue;
    const auto l = anchor_loss.narrow(0, b * per_image, per_image)
                       .masked_fill(~negative, -std::numeric_limits<double>::infinity());
    const auto hardest = std::get<1>(l.topk(keep));
    out.index_fill_(0, hardest, kBackground);
  }
  return kept;
}

torch::Tensor ohem_loss(const torch::Tensor& logits, const torch::Tensor& targets,
                        const OhemOptions& options, LossBreakdown* breakdown) {
  check_loss_inputs(logits, targets, logits.dim() == 2 ? logits.size(1) : 0, "ohem_loss");
  FocalOptions ce;
  ce.alpha = -1;
  ce.gamma = 0;
  ce.reduction = options.reduction;
  ce.easy_prob = options.easy_prob;
  ce.fused = options.fused;
  return sigmoid_focal_loss(logits, ohem_select(logits, targets, options), ce, breakdown);
}

}  // namespace focaldet::loss
