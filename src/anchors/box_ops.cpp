#include "anchors/box_ops.h"

#include <ATen/ATen.h>

#include "common/error.h"

namespace focaldet::anchors {
namespace {

void check_boxes(const at::Tensor& t, const char* fn) {
  if (t.dim() != 2 || t.size(1) != 4) {
    throw Error(std::string(fn) + ": boxes must be [N, 4], got " + c10::str(t.sizes()));
  }
}

// [N, M] intersection areas.
at::Tensor intersection(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor lt = at::max(a.slice(1, 0, 2).unsqueeze(1), b.slice(1, 0, 2).unsqueeze(0));
  const at::Tensor rb = at::min(a.slice(1, 2, 4).unsqueeze(1), b.slice(1, 2, 4).unsqueeze(0));
  const at::Tensor wh = (rb - lt).clamp_min(0);
  return wh.select(2, 0) * wh.select(2, 1);
}

}  // namespace

at::Tensor box_area(const at::Tensor& boxes) {
  check_boxes(boxes, "box_area");
  return (boxes.select(1, 2) - boxes.select(1, 0)) * (boxes.select(1, 3) - boxes.select(1, 1));
}

at::Tensor box_iou(const at::Tensor& a, const at::Tensor& b) {
  check_boxes(a, "box_iou");
  check_boxes(b, "box_iou");
  const at::Tensor inter = intersection(a, b);
  const at::Tensor uni = box_area(a).unsqueeze(1) + box_area(b).unsqueeze(0) - inter;
  return at::where(uni > 0, inter / uni, at::zeros_like(inter));
}

at::Tensor box_ioa(const at::Tensor& a, const at::Tensor& b) {
  check_boxes(a, "box_ioa");
  check_boxes(b, "box_ioa");
  const at::Tensor inter = intersection(a, b);
  const at::Tensor area = box_area(a).unsqueeze(1).expand_as(inter);
  return at::where(area > 0, inter / area, at::zeros_like(inter));
}

at::Tensor clip_boxes(const at::Tensor& boxes, int64_t height, int64_t width) {
  check(boxes.size(-1) == 4,
        "clip_boxes: last dimension must be 4, got " + c10::str(boxes.sizes()));
  const at::Tensor x = boxes.slice(-1, 0, 4, 2).clamp(0, static_cast<double>(width));
  const at::Tensor y = boxes.slice(-1, 1, 4, 2).clamp(0, static_cast<double>(height));
  return at::stack({x.select(-1, 0), y.select(-1, 0), x.select(-1, 1), y.select(-1, 1)}, -1);
}

}  // namespace focaldet::anchors
