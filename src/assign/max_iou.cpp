#include "assign/max_iou.h"

#include <ATen/ATen.h>

#include "anchors/box_ops.h"
#include "common/error.h"

namespace focaldet::assign {

AssignResult assign_max_iou(const at::Tensor& anchors_in, const GroundTruth& gt,
                            const MaxIoUOptions& o) {
  check(anchors_in.dim() == 2 && anchors_in.size(1) == 4,
        "assign_max_iou: anchors must be [A, 4], got " + c10::str(anchors_in.sizes()));
  check(o.neg_iou <= o.pos_iou, "assign_max_iou: neg_iou " + std::to_string(o.neg_iou) +
                                    " must be <= pos_iou " + std::to_string(o.pos_iou));
  // Computed where the anchors are (the model's device): tensor ops only.
  const at::Device device = anchors_in.device();
  const GroundTruth truth = validate_ground_truth(gt, "assign_max_iou", device);
  const at::Tensor anchors = anchors_in.to(at::kFloat);
  const int64_t a = anchors.size(0);

  AssignResult result;
  if (truth.boxes.size(0) == 0 || a == 0) {
    result.matched_gt = at::full({a}, kBackground, at::dtype(at::kLong).device(device));
  } else {
    const at::Tensor iou = anchors::box_iou(truth.boxes, anchors);  // [G, A]
    auto [best_iou, best_gt] = iou.max(0);
    at::Tensor matches = best_gt.clone();
    matches.masked_fill_(best_iou < o.neg_iou, kBackground);
    matches.masked_fill_((best_iou >= o.neg_iou) & (best_iou < o.pos_iou), kIgnore);
    if (o.low_quality_matches) {
      // For every gt, the anchors that reach its highest IoU (ties included) take their own
      // best gt, which need not be this one (torchvision's set_low_quality_matches_).
      // A gt that overlaps no anchor at all is skipped: with IoU 0 "ties" every anchor would
      // become positive (torchvision has no such case in practice; this is the only deviation).
      const at::Tensor highest = std::get<0>(iou.max(1));  // [G]
      const at::Tensor tie = (iou == highest.unsqueeze(1)) & (highest.unsqueeze(1) > 0);
      const at::Tensor pred = at::nonzero(tie).select(1, 1);
      matches.index_put_({pred}, best_gt.index_select(0, pred));
    }
    result.matched_gt = matches;
  }
  finish_assignment(result, truth, anchors, o.crowd_ioa, device);
  return result;
}

}  // namespace focaldet::assign
