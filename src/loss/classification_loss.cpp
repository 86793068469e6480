#include "loss/classification_loss.h"

#include <ATen/ATen.h>

#include <cmath>

#include "common/error.h"
#include "loss/ohem.h"
#include "loss/sigmoid_focal.h"
#include "loss/softmax_focal.h"

namespace focaldet::loss {

ClsLossKind parse_cls_loss(const std::string& name) {
  if (name == "focal") return ClsLossKind::Focal;
  if (name == "ce") return ClsLossKind::CE;
  if (name == "alpha_ce") return ClsLossKind::AlphaCE;
  if (name == "ohem") return ClsLossKind::OHEM;
  if (name == "softmax_focal") return ClsLossKind::SoftmaxFocal;
  throw Error("unknown classification loss '" + name +
              "' (expected focal, ce, alpha_ce, ohem or softmax_focal)");
}

const char* to_string(ClsLossKind kind) {
  switch (kind) {
    case ClsLossKind::Focal:
      return "focal";
    case ClsLossKind::CE:
      return "ce";
    case ClsLossKind::AlphaCE:
      return "alpha_ce";
    case ClsLossKind::OHEM:
      return "ohem";
    case ClsLossKind::SoftmaxFocal:
      return "softmax_focal";
  }
  return "?";
}

int64_t logits_per_anchor(ClsLossKind kind, int64_t classes) {
  return kind == ClsLossKind::SoftmaxFocal ? classes + 1 : classes;
}

torch::Tensor classification_loss(const torch::Tensor& logits, const torch::Tensor& targets,
                                  const ClsLossOptions& options, double normalizer,
                                  LossBreakdown* breakdown) {
  check(logits.dim() == 3 && targets.dim() == 2 && logits.size(0) == targets.size(0) &&
            logits.size(1) == targets.size(1),
        "classification_loss: expected logits [B, A, K] and targets [B, A]");
  check(std::isfinite(normalizer) && normalizer > 0,
        "classification_loss: normalizer must be > 0, got " + std::to_string(normalizer));
  const auto flat_logits = logits.reshape({-1, logits.size(2)});
  const auto flat_targets = targets.reshape({-1});

  FocalOptions focal;
  focal.alpha = options.alpha;
  focal.gamma = options.gamma;
  focal.easy_prob = options.easy_prob;
  focal.reduction = Reduction::Sum;
  focal.fused = options.fused;
  torch::Tensor sum;
  switch (options.kind) {
    case ClsLossKind::Focal:
      sum = sigmoid_focal_loss(flat_logits, flat_targets, focal, breakdown);
      break;
    case ClsLossKind::CE:
      focal.alpha = -1;
      focal.gamma = 0;
      sum = sigmoid_focal_loss(flat_logits, flat_targets, focal, breakdown);
      break;
    case ClsLossKind::AlphaCE:
      focal.gamma = 0;
      sum = sigmoid_focal_loss(flat_logits, flat_targets, focal, breakdown);
      break;
    case ClsLossKind::OHEM: {
      OhemOptions ohem;
      ohem.neg_pos_ratio = options.ohem_neg_pos_ratio;
      ohem.images = logits.size(0);
      ohem.easy_prob = options.easy_prob;
      ohem.fused = options.fused;
      sum = ohem_loss(flat_logits, flat_targets, ohem, breakdown);
      break;
    }
    case ClsLossKind::SoftmaxFocal:
      sum = softmax_focal_loss(flat_logits, flat_targets, focal, breakdown);
      break;
  }
  if (breakdown != nullptr) breakdown->scale(1.0 / normalizer);
  return sum / normalizer;
}

}  // namespace focaldet::loss
