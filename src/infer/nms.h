#pragma once
// Greedy non-maximum suppression (ours; the same rule as torchvision.ops.nms): visit boxes by
// decreasing score, keep a box unless a kept box overlaps it with IoU > iou_threshold.
#include <ATen/core/Tensor.h>

namespace focaldet::infer {

// boxes: [N, 4] float (x1, y1, x2, y2); scores: [N]. Returns the kept indices [K] int64 in
// decreasing score order (ties keep input order).
at::Tensor nms(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold);

// As nms, but a box only suppresses boxes of its own class; classes: [N] int64. Returns the kept
// indices [K] int64 in decreasing score order over all classes.
at::Tensor batched_nms(const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& classes,
                       double iou_threshold);

}  // namespace focaldet::infer
