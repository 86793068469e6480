#include "assign/assign_result.h"

#include <ATen/ATen.h>

#include "anchors/box_ops.h"
#include "common/error.h"

namespace focaldet::assign {

int64_t AssignResult::num_pos() const { return (matched_gt >= 0).sum().item<int64_t>(); }

namespace {

std::string sizes_of(const at::Tensor& t) {
  return t.defined() ? c10::str(t.sizes()) : std::string("undefined");
}

}  // namespace

GroundTruth validate_ground_truth(const GroundTruth& gt, const char* fn, const at::Device& device) {
  const std::string name(fn);
  check(gt.boxes.defined() && gt.boxes.dim() == 2 && gt.boxes.size(1) == 4,
        name + ": gt boxes must be [G, 4], got " + sizes_of(gt.boxes));
  const int64_t g = gt.boxes.size(0);
  check(gt.labels.defined() && gt.labels.dim() == 1 && gt.labels.size(0) == g,
        name + ": gt labels must be [" + std::to_string(g) + "], got " + sizes_of(gt.labels));
  // An empty crowd tensor of any shape (e.g. [0] from a batch without crowd regions) is none.
  const bool has_crowd = gt.crowd_boxes.defined() && gt.crowd_boxes.numel() > 0;
  check(!has_crowd || (gt.crowd_boxes.dim() == 2 && gt.crowd_boxes.size(1) == 4),
        name + ": gt crowd_boxes must be [K, 4], got " + sizes_of(gt.crowd_boxes));
  GroundTruth out;
  out.boxes = gt.boxes.to(device, at::kFloat);
  out.labels = gt.labels.to(device, at::kLong);
  out.crowd_boxes = has_crowd ? gt.crowd_boxes.to(device, at::kFloat)
                              : at::zeros({0, 4}, at::dtype(at::kFloat).device(device));
  return out;
}

void ignore_crowd_overlaps(AssignResult& result, const at::Tensor& anchors,
                           const at::Tensor& crowd_boxes, double crowd_ioa) {
  if (crowd_boxes.size(0) == 0 || anchors.size(0) == 0) return;
  const at::Tensor ioa = anchors::box_ioa(anchors, crowd_boxes).amax(1);  // [A]
  const at::Tensor ignore = (ioa > crowd_ioa) & (result.matched_gt == kBackground);
  result.matched_gt.masked_fill_(ignore, kIgnore);
  result.labels.masked_fill_(ignore, kIgnore);
}

at::Tensor labels_from_matches(const at::Tensor& matched_gt, const at::Tensor& gt_labels) {
  if (gt_labels.size(0) == 0) return matched_gt.clone();
  const at::Tensor pos = matched_gt >= 0;
  return at::where(pos, gt_labels.index_select(0, matched_gt.clamp_min(0)), matched_gt);
}

void finish_assignment(AssignResult& result, const GroundTruth& gt, const at::Tensor& anchors,
                       double crowd_ioa, const at::Device& device) {
  result.labels = labels_from_matches(result.matched_gt, gt.labels);
  ignore_crowd_overlaps(result, anchors, gt.crowd_boxes, crowd_ioa);
  result.matched_gt = result.matched_gt.to(device);  // itself: computed there
  result.labels = result.labels.to(device);
}

}  // namespace focaldet::assign
