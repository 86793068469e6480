#pragma once
// The R-CNN box parameterisation (dx, dy, dw, dh) of a box relative to an anchor, as
// torchvision's det_utils.BoxCoder: dx = wx (gx - ax) / aw, dw = ww log(gw / aw), and back.
#include <ATen/core/Tensor.h>

#include <cmath>

namespace focaldet::anchors {

// exp() of a larger dw/dh would give boxes over 1000/16 times the anchor: clamp before exp.
inline const double kBoxXformClip = std::log(1000.0 / 16.0);

struct BoxCoderOptions {
  double wx = 1.0, wy = 1.0, ww = 1.0, wh = 1.0;  // RetinaNet uses (1, 1, 1, 1)
  double clip = kBoxXformClip;                    // upper bound on dw/ww and dh/wh in decode
};

// boxes, anchors: [N, 4] (x1, y1, x2, y2). Returns the deltas [N, 4] that decode `anchors` into
// `boxes`. Anchors must have positive width and height.
at::Tensor encode_boxes(const at::Tensor& boxes, const at::Tensor& anchors,
                        const BoxCoderOptions& options = {});

// deltas, anchors: [N, 4]. Returns boxes [N, 4] (x1, y1, x2, y2). Differentiable in `deltas`
// (the GIoU loss backpropagates through it).
at::Tensor decode_boxes(const at::Tensor& deltas, const at::Tensor& anchors,
                        const BoxCoderOptions& options = {});

}  // namespace focaldet::anchors
