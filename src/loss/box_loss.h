#pragma once
// Box-regression losses for positive anchors. Smooth L1 and L1 act on the box coder's deltas
// (anchors::encode_boxes); GIoU (Rezatofighi et al. 2019) acts on boxes, so decode the predicted
// deltas first (anchors::decode_boxes is differentiable) and pass the gt boxes themselves.
#include <ATen/core/Tensor.h>

#include "loss/reduction.h"

namespace focaldet::loss {

struct SmoothL1Options {
  // Quadratic below beta, linear above; beta = 0 is L1. 1/9 as Detectron's RetinaNet.
  double beta = 1.0 / 9.0;
  Reduction reduction = Reduction::Sum;
};

// pred, target: [N, 4] deltas. Per box: sum over the 4 coordinates of
// 0.5 d^2 / beta if |d| < beta else |d| - 0.5 beta, d = pred - target. None gives [N]; Mean
// divides the sum by N (0 for N = 0).
at::Tensor smooth_l1_box_loss(const at::Tensor& pred, const at::Tensor& target,
                              const SmoothL1Options& options = {});

// Sum over the 4 coordinates of |pred - target| per box (torchvision's RetinaNet box loss).
at::Tensor l1_box_loss(const at::Tensor& pred, const at::Tensor& target,
                       Reduction reduction = Reduction::Sum);

// pred_boxes, target_boxes: [N, 4] (x1, y1, x2, y2). Per box 1 - GIoU, in [0, 2]:
// GIoU = IoU - (C - U) / C with U the union and C the area of the smallest enclosing box;
// eps = 1e-7 in both denominators as torchvision.ops.generalized_box_iou_loss.
at::Tensor giou_loss(const at::Tensor& pred_boxes, const at::Tensor& target_boxes,
                     Reduction reduction = Reduction::Sum, double eps = 1e-7);

}  // namespace focaldet::loss
