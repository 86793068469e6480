#pragma once
// Adaptive Training Sample Selection (Zhang et al. 2020, "Bridging the Gap Between Anchor-based
// and Anchor-free Detection", Alg. 1): for each gt box take the top_k anchors per pyramid level
// closest to its centre (L2 between centres); their IoUs with the box set the threshold
// mean + std; a candidate is positive when its IoU >= the threshold and its centre lies inside
// the box. An anchor positive for several boxes goes to the one of highest IoU. All others are
// background; crowd overlaps are ignored as in MaxIoU.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "assign/assign_result.h"

namespace focaldet::assign {

struct AtssOptions {
  int64_t top_k = 9;            // candidates per level per gt
  double center_margin = 0.01;  // the anchor centre must be this far (pixels) inside the box, as
                                // the reference implementation's "min(l, t, r, b) > 0.01"
  double crowd_ioa = 0.0;       // as MaxIoUOptions::crowd_ioa
};

// anchors: [A, 4] float, concatenated over levels with num_anchors_per_level[l] rows each.
// The std is the unbiased sample std (torch.std, as the reference code). Returns [A] results.
AssignResult assign_atss(const at::Tensor& anchors,
                         const std::vector<int64_t>& num_anchors_per_level, const GroundTruth& gt,
                         const AtssOptions& options = {});

}  // namespace focaldet::assign
