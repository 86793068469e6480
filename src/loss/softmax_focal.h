#pragma once
// Softmax focal loss: a (C+1)-way softmax with an explicit background class, the variant the
// focal-loss paper compares with in its appendix. With gamma 0 and alpha off it is softmax
// cross-entropy.
#include <torch/types.h>

#include "loss/loss_breakdown.h"
#include "loss/sigmoid_focal.h"

namespace focaldet::loss {

// logits: [N, C+1] float32/float64, column C is background; targets: [N] int64, class in
// [0, C), -1 background (column C), -2 ignored. Per anchor: -alpha_t (1 - p_t)^gamma log(p_t)
// with alpha_t = alpha for objects and 1 - alpha for background (1 when alpha < 0).
// Returns [N] (Reduction::None) or a scalar (Mean: over non-ignored anchors). A background anchor
// is an easy negative in `breakdown` when every foreground probability is below easy_prob.
torch::Tensor softmax_focal_loss(const torch::Tensor& logits, const torch::Tensor& targets,
                                 const FocalOptions& options = {},
                                 LossBreakdown* breakdown = nullptr);

}  // namespace focaldet::loss
