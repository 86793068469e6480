#include "loss/box_loss.h"

#include <ATen/ATen.h>

#include <string>

#include "common/error.h"

namespace focaldet::loss {
namespace {

void check_pair(const at::Tensor& a, const at::Tensor& b, const char* fn) {
  if (a.dim() != 2 || a.size(1) != 4 || a.sizes() != b.sizes()) {
    throw Error(std::string(fn) + ": inputs must both be [N, 4], got " + c10::str(a.sizes()) +
                " and " + c10::str(b.sizes()));
  }
}

// per_box: [N].
at::Tensor reduce(const at::Tensor& per_box, Reduction r) {
  switch (r) {
    case Reduction::None:
      return per_box;
    case Reduction::Sum:
      return per_box.sum();
    case Reduction::Mean:
      return per_box.numel() == 0 ? per_box.sum() : per_box.mean();
  }
  throw Error("box loss: unknown reduction");
}

}  // namespace

at::Tensor smooth_l1_box_loss(const at::Tensor& pred, const at::Tensor& target,
                              const SmoothL1Options& o) {
  check_pair(pred, target, "smooth_l1_box_loss");
  check(o.beta >= 0, "smooth_l1_box_loss: beta must be >= 0, got " + std::to_string(o.beta));
  const at::Tensor d = (pred - target).abs();
  if (o.beta == 0) return reduce(d.sum(1), o.reduction);
  const at::Tensor per = at::where(d < o.beta, 0.5 * d * d / o.beta, d - 0.5 * o.beta);
  return reduce(per.sum(1), o.reduction);
}

at::Tensor l1_box_loss(const at::Tensor& pred, const at::Tensor& target, Reduction reduction) {
  check_pair(pred, target, "l1_box_loss");
  return reduce((pred - target).abs().sum(1), reduction);
}

at::Tensor giou_loss(const at::Tensor& p, const at::Tensor& g, Reduction reduction, double eps) {
  check_pair(p, g, "giou_loss");
  const at::Tensor px1 = p.select(1, 0), py1 = p.select(1, 1), px2 = p.select(1, 2),
                   py2 = p.select(1, 3);
  const at::Tensor gx1 = g.select(1, 0), gy1 = g.select(1, 1), gx2 = g.select(1, 2),
                   gy2 = g.select(1, 3);
  const at::Tensor inter = (at::min(px2, gx2) - at::max(px1, gx1)).clamp_min(0) *
                           (at::min(py2, gy2) - at::max(py1, gy1)).clamp_min(0);
  const at::Tensor uni = (px2 - px1) * (py2 - py1) + (gx2 - gx1) * (gy2 - gy1) - inter;
  const at::Tensor iou = inter / (uni + eps);
  const at::Tensor enclosing =
      (at::max(px2, gx2) - at::min(px1, gx1)) * (at::max(py2, gy2) - at::min(py1, gy1));
  const at::Tensor giou = iou - (enclosing - uni) / (enclosing + eps);
  return reduce(1 - giou, reduction);
}

}  // namespace focaldet::loss
