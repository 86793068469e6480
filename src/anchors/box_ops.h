#pragma once
// Box overlaps and clipping, boxes as (x1, y1, x2, y2) in pixels, area = (x2 - x1) (y2 - y1)
// (no +1, as torchvision.ops).
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace focaldet::anchors {

// boxes: [N, 4]. Returns [N].
at::Tensor box_area(const at::Tensor& boxes);

// a: [N, 4], b: [M, 4]. Returns the IoU matrix [N, M] (torchvision.ops.box_iou). A pair whose
// union is zero (two empty boxes) gets 0, not NaN.
at::Tensor box_iou(const at::Tensor& a, const at::Tensor& b);

// a: [N, 4], b: [M, 4]. Returns intersection / area(a) [N, M], 0 where area(a) is 0. Used for
// crowd regions: how much of an anchor lies inside the region.
at::Tensor box_ioa(const at::Tensor& a, const at::Tensor& b);

// Clamps x to [0, width] and y to [0, height]; boxes: [..., 4].
at::Tensor clip_boxes(const at::Tensor& boxes, int64_t height, int64_t width);

}  // namespace focaldet::anchors
