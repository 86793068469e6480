#pragma once
// RetinaNet's assignment (Lin et al. 2017, sec. 4): IoU >= 0.5 with some gt box is positive,
// < 0.4 with all is background, in between is ignored; each gt box also keeps the anchors of its
// highest IoU (ties included) even below 0.5, so no object goes unassigned. The rule and its
// tie-breaking are torchvision's det_utils.Matcher(0.5, 0.4, allow_low_quality_matches=True).
#include <ATen/core/Tensor.h>

#include "assign/assign_result.h"

namespace focaldet::assign {

struct MaxIoUOptions {
  double pos_iou = 0.5;             // IoU >= this: positive
  double neg_iou = 0.4;             // IoU < this: background; in between: ignored
  bool low_quality_matches = true;  // keep each gt's best anchors as positives
  double crowd_ioa = 0.0;           // background anchors overlapping a crowd region by more
                                    // than this fraction of their area are ignored
};

// anchors: [A, 4] float. Returns matched_gt / labels [A] (indices into gt.boxes; crowd regions
// are never matched). No gt boxes: everything is background (crowd overlaps ignored).
AssignResult assign_max_iou(const at::Tensor& anchors, const GroundTruth& gt,
                            const MaxIoUOptions& options = {});

}  // namespace focaldet::assign
