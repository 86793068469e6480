#pragma once
// Sigmoid focal loss (Lin et al., "Focal Loss for Dense Object Detection", 2017), fused:
// FL = -alpha_t (1 - p_t)^gamma log(p_t), summed over classes, without a one-hot target.
#include <torch/types.h>

#include "loss/loss_breakdown.h"
#include "loss/reduction.h"

namespace focaldet::loss {

struct FocalOptions {
  double alpha = 0.25;  // weight of positive terms (negatives get 1 - alpha); < 0 turns it off
  double gamma = 2.0;   // focusing parameter, >= 0; 0 gives (alpha-balanced) cross-entropy
  Reduction reduction = Reduction::Sum;
  double easy_prob = 0.1;  // breakdown: background is easy when every class probability is below
  // CPU tensors run the fused kernel; false runs the tensor-op form (sigmoid_focal_loss_composite)
  // there too, the path every other device (CUDA) takes: for tests on a machine without a GPU.
  bool fused = true;
};

// logits: [N, C] float32 or float64; targets: [N] int64, class index in [0, C), -1 background,
// -2 ignored (contributes nothing, gets zero gradient). CPU tensors run the fused kernel (unless
// options.fused is false); other devices run sigmoid_focal_loss_composite.
// Returns [N, C] (Reduction::None) or a scalar. Differentiable in `logits` through one fused
// forward and one fused backward pass. Fills `breakdown` (same scale as the result; counts of
// anchors) when it is not null. Throws focaldet::Error on bad shapes, dtypes, targets or options.
torch::Tensor sigmoid_focal_loss(const torch::Tensor& logits, const torch::Tensor& targets,
                                 const FocalOptions& options = {},
                                 LossBreakdown* breakdown = nullptr);

// The same loss as differentiable tensor ops (log-sigmoid, so equally stable), with a [N, C]
// target mask. sigmoid_focal_loss uses it for tensors that are not on the CPU (CUDA), where the
// fused CPU kernel cannot run; on the CPU it is the fused kernel's second opinion in tests.
torch::Tensor sigmoid_focal_loss_composite(const torch::Tensor& logits,
                                           const torch::Tensor& targets,
                                           const FocalOptions& options = {},
                                           LossBreakdown* breakdown = nullptr);

// Checks logits/targets as sigmoid_focal_loss does (also used by the other losses); `classes`
// is the number of foreground classes a target may name.
void check_loss_inputs(const torch::Tensor& logits, const torch::Tensor& targets, int64_t classes,
                       const char* loss_name);
void check_focal_options(double alpha, double gamma, double easy_prob);

}  // namespace focaldet::loss
