#include "assign/atss.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "anchors/box_ops.h"
#include "common/error.h"

namespace focaldet::assign {

AssignResult assign_atss(const at::Tensor& anchors_in,
                         const std::vector<int64_t>& num_anchors_per_level, const GroundTruth& gt,
                         const AtssOptions& o) {
  check(anchors_in.dim() == 2 && anchors_in.size(1) == 4,
        "assign_atss: anchors must be [A, 4], got " + c10::str(anchors_in.sizes()));
  int64_t total = 0;
  for (int64_t n : num_anchors_per_level) total += n;
  check(total == anchors_in.size(0), "assign_atss: num_anchors_per_level sums to " +
                                         std::to_string(total) + " but there are " +
                                         std::to_string(anchors_in.size(0)) + " anchors");
  check(o.top_k > 0, "assign_atss: top_k must be > 0, got " + std::to_string(o.top_k));
  // Computed where the anchors are (the model's device): tensor ops only.
  const at::Device device = anchors_in.device();
  const GroundTruth truth = validate_ground_truth(gt, "assign_atss", device);
  const at::Tensor anchors = anchors_in.to(at::kFloat);
  const int64_t a = anchors.size(0);
  const int64_t r = truth.boxes.size(0);

  AssignResult result;
  result.matched_gt = at::full({a}, kBackground, at::dtype(at::kLong).device(device));
  if (r > 0 && a > 0) {
    const at::Tensor iou = anchors::box_iou(truth.boxes, anchors);  // [R, A]
    const at::Tensor acx = (anchors.select(1, 0) + anchors.select(1, 2)) / 2;
    const at::Tensor acy = (anchors.select(1, 1) + anchors.select(1, 3)) / 2;
    const at::Tensor gcx = (truth.boxes.select(1, 0) + truth.boxes.select(1, 2)) / 2;
    const at::Tensor gcy = (truth.boxes.select(1, 1) + truth.boxes.select(1, 3)) / 2;
    const at::Tensor dist = at::sqrt((gcx.unsqueeze(1) - acx.unsqueeze(0)).pow(2) +
                                     (gcy.unsqueeze(1) - acy.unsqueeze(0)).pow(2));  // [R, A]
    // Candidates: the top_k nearest anchors of every level (all of a level if it has fewer).
    std::vector<at::Tensor> candidates;
    int64_t start = 0;
    for (int64_t n : num_anchors_per_level) {
      if (n > 0) {
        const int64_t k = std::min(o.top_k, n);
        const at::Tensor idx =
            std::get<1>(dist.slice(1, start, start + n).topk(k, 1, /*largest=*/false));
        candidates.push_back(idx + start);
      }
      start += n;
    }
    const at::Tensor cand = at::cat(candidates, 1);   // [R, K]
    const at::Tensor cand_iou = iou.gather(1, cand);  // [R, K]
    // One candidate has no sample std (NaN would reject it): use 0, the threshold is its IoU.
    const at::Tensor std = cand_iou.size(1) > 1 ? cand_iou.std(1, /*unbiased=*/true)
                                                : at::zeros({r}, cand_iou.options());
    const at::Tensor thresh = cand_iou.mean(1) + std;  // [R]
    // Centre strictly inside the box: min(l, t, r, b) > margin.
    const at::Tensor cx = acx.index_select(0, cand.reshape(-1)).view_as(cand);
    const at::Tensor cy = acy.index_select(0, cand.reshape(-1)).view_as(cand);
    const at::Tensor gb = truth.boxes;
    const at::Tensor l = cx - gb.select(1, 0).unsqueeze(1);
    const at::Tensor t = cy - gb.select(1, 1).unsqueeze(1);
    const at::Tensor rr = gb.select(1, 2).unsqueeze(1) - cx;
    const at::Tensor b = gb.select(1, 3).unsqueeze(1) - cy;
    const at::Tensor inside = at::stack({l, t, rr, b}, 0).amin(0) > o.center_margin;
    const at::Tensor positive = (cand_iou >= thresh.unsqueeze(1)) & inside;  // [R, K]
    // IoU of (gt, anchor) where that gt selected the anchor as positive, -1 elsewhere; then the
    // highest such IoU picks the gt of an anchor claimed by several.
    at::Tensor claimed = at::full({r, a}, -1.0f, iou.options());
    claimed.scatter_(1, cand, at::where(positive, cand_iou, at::full_like(cand_iou, -1.0f)));
    auto [best, best_gt] = claimed.max(0);
    const at::Tensor pos = best >= 0;
    result.matched_gt = at::where(pos, best_gt, result.matched_gt);
  }
  finish_assignment(result, truth, anchors, o.crowd_ioa, device);
  return result;
}

}  // namespace focaldet::assign
