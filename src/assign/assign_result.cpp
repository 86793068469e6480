#include "assign/assign_result.h"

#include <ATen/ATen.h>

#include "anchors/box_ops.h"
#include "common/error.h"

namespace focaldet::assign {

int64_t AssignResult::num_pos() const { return (matched_gt >= 0).sum().item<int64_t>(); }

SplitGroundTruth split_ground_truth(const GroundTruth& gt, const char* fn) {
  const std::string name(fn);
  check(gt.boxes.defined() && gt.boxes.dim() == 2 && gt.boxes.size(1) == 4,
        name + ": gt boxes must be [G, 4], got " +
            (gt.boxes.defined() ? c10::str(gt.boxes.sizes()) : std::string("undefined")));
  const int64_t g = gt.boxes.size(0);
  check(gt.labels.defined() && gt.labels.dim() == 1 && gt.labels.size(0) == g,
        name + ": gt labels must be [" + std::to_string(g) + "], got " +
            (gt.labels.defined() ? c10::str(gt.labels.sizes()) : std::string("undefined")));
  SplitGroundTruth out;
  at::Tensor regular = at::ones({g}, at::kBool);
  if (gt.crowd.defined()) {
    check(gt.crowd.dim() == 1 && gt.crowd.size(0) == g, name + ": gt crowd flags must be [" +
                                                            std::to_string(g) + "], got " +
                                                            c10::str(gt.crowd.sizes()));
    regular = gt.crowd.to(at::kCPU, at::kBool).logical_not();
  }
  out.index = at::nonzero(regular).view(-1);
  const at::Tensor boxes = gt.boxes.to(at::kCPU, at::kFloat);
  out.boxes = boxes.index_select(0, out.index);
  out.labels = gt.labels.to(at::kCPU, at::kLong).index_select(0, out.index);
  out.crowd_boxes = boxes.index_select(0, at::nonzero(regular.logical_not()).view(-1));
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
                       const at::Tensor& crowd_boxes, double crowd_ioa, const at::Device& device) {
  result.labels = labels_from_matches(result.matched_gt, gt.labels.to(at::kCPU, at::kLong));
  ignore_crowd_overlaps(result, anchors, crowd_boxes, crowd_ioa);
  result.matched_gt = result.matched_gt.to(device);
  result.labels = result.labels.to(device);
}

}  // namespace focaldet::assign
