#pragma once
// The classification loss a detector trains with, chosen by name: focal (the default), and the
// baselines it is compared with. One entry point so the trainer and the comparison runs differ
// only in their config.
#include <torch/types.h>

#include <string>

#include "loss/loss_breakdown.h"

namespace focaldet::loss {

enum class ClsLossKind {
  Focal,         // sigmoid focal loss, alpha and gamma
  CE,            // sigmoid cross-entropy: gamma 0, alpha off
  AlphaCE,       // alpha-balanced sigmoid cross-entropy: gamma 0
  OHEM,          // sigmoid cross-entropy on positives and the hardest negatives (3:1)
  SoftmaxFocal,  // (C+1)-way softmax focal loss with a background class
};

// "focal" | "ce" | "alpha_ce" | "ohem" | "softmax_focal"; throws focaldet::Error otherwise.
ClsLossKind parse_cls_loss(const std::string& name);
const char* to_string(ClsLossKind kind);

struct ClsLossOptions {
  ClsLossKind kind = ClsLossKind::Focal;
  double alpha = 0.25;  // focal, alpha_ce, softmax_focal
  double gamma = 2.0;   // focal, softmax_focal
  double ohem_neg_pos_ratio = 3.0;
  double easy_prob = 0.1;  // breakdown threshold
  // false: the sigmoid losses run as tensor ops on the CPU too (FocalOptions::fused), as they
  // always do on CUDA.
  bool fused = true;
};

// Number of classifier outputs per anchor the loss expects for C object classes (C, or C + 1
// for softmax_focal's background column).
int64_t logits_per_anchor(ClsLossKind kind, int64_t classes);

// logits: [B, A, K] with K = logits_per_anchor(kind, C); targets: [B, A] int64 (class, -1
// background, -2 ignored). Returns the summed loss of the batch divided by `normalizer`
// (see LossNormalizer); `breakdown`, when given, is in the same scale.
torch::Tensor classification_loss(const torch::Tensor& logits, const torch::Tensor& targets,
                                  const ClsLossOptions& options, double normalizer,
                                  LossBreakdown* breakdown = nullptr);

}  // namespace focaldet::loss
