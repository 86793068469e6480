#pragma once
// What an assigner says about each anchor of one image; `labels` is exactly the target the
// classification losses take (src/loss: class index, kBackground, kIgnore; common/targets.h).
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>

#include "common/targets.h"

namespace focaldet::assign {

// The codes of common/targets.h, also spelled assign::kBackground / assign::kIgnore.
using focaldet::kBackground;
using focaldet::kIgnore;

struct AssignResult {
  at::Tensor matched_gt;  // [A] int64: index into the image's gt boxes, or kBackground / kIgnore
  at::Tensor labels;      // [A] int64: class of the matched gt, or kBackground / kIgnore
  int64_t num_pos() const;
};

// gt of one image in the shape data::Batch carries it (image i: boxes[i], labels[i],
// crowd_boxes[i]), so the trainer passes the batch's tensors straight through.
struct GroundTruth {
  at::Tensor boxes;        // [G, 4] float (x1, y1, x2, y2), input pixels: the objects
  at::Tensor labels;       // [G] int64 contiguous class index
  at::Tensor crowd_boxes;  // [K, 4] float, iscrowd regions (never matched, only ignored);
                           // undefined or empty means none
};

// Checks the shapes of `gt` and returns it on `device` (the anchors' device: the assigners
// compute where the anchors are) with boxes and crowd_boxes float, labels int64, crowd_boxes
// [0, 4] when undefined. `fn` names the caller in errors.
GroundTruth validate_ground_truth(const GroundTruth& gt, const char* fn, const at::Device& device);

// Anchors that would be background but overlap a crowd region (intersection / anchor area
// > crowd_ioa) become kIgnore: an object inside a crowd region is neither a target nor a
// negative (the COCO evaluation never counts detections in crowd regions as false positives).
void ignore_crowd_overlaps(AssignResult& result, const at::Tensor& anchors,
                           const at::Tensor& crowd_boxes, double crowd_ioa);

// labels = gt_labels[matched_gt] for positives; kBackground / kIgnore copied through.
at::Tensor labels_from_matches(const at::Tensor& matched_gt, const at::Tensor& gt_labels);

// The common end of the assigners: `result.matched_gt` ([A] int64, indices into gt.boxes) is
// set; fills `result.labels` from gt.labels (labels_from_matches), ignores anchors in
// gt.crowd_boxes (ignore_crowd_overlaps, with the float `anchors`) and leaves both tensors on
// `device` (the caller's anchors' device). `gt` is validate_ground_truth's output.
void finish_assignment(AssignResult& result, const GroundTruth& gt, const at::Tensor& anchors,
                       double crowd_ioa, const at::Device& device);

}  // namespace focaldet::assign
