#include "infer/coco_results.h"

#include <ATen/ATen.h>

#include <string>

#include "common/error.h"

namespace focaldet::infer {

std::vector<eval::Detection> to_coco_results(const Detections& dets, int64_t image_id,
                                             const std::vector<int64_t>& contiguous_to_category,
                                             bool flipped, int original_width) {
  const int64_t k = dets.boxes.defined() ? dets.boxes.size(0) : 0;
  check(k == 0 || (dets.boxes.dim() == 2 && dets.boxes.size(1) == 4 && dets.scores.defined() &&
                   dets.scores.numel() == k && dets.labels.defined() && dets.labels.numel() == k),
        "to_coco_results: image " + std::to_string(image_id) +
            ": detections need boxes [K, 4], scores [K] and labels [K]");
  std::vector<eval::Detection> out;
  if (k == 0) return out;
  // Double on the CPU: the results json keeps full precision, and the evaluator reads doubles.
  const at::Tensor boxes = dets.boxes.detach().to(at::kCPU, at::kDouble).contiguous();
  const at::Tensor scores = dets.scores.detach().to(at::kCPU, at::kDouble).contiguous();
  const at::Tensor labels = dets.labels.to(at::kCPU, at::kLong).contiguous();
  const double* b = boxes.data_ptr<double>();
  const double* s = scores.data_ptr<double>();
  const int64_t* l = labels.data_ptr<int64_t>();
  const auto num_categories = static_cast<int64_t>(contiguous_to_category.size());
  const double w = original_width;
  out.reserve(static_cast<std::size_t>(k));
  for (int64_t i = 0; i < k; ++i) {
    check(l[i] >= 0 && l[i] < num_categories,
          "to_coco_results: image " + std::to_string(image_id) + ": label " + std::to_string(l[i]) +
              " has no category (" + std::to_string(num_categories) + " categories)");
    const double* box = b + 4 * i;
    // The loader flips continuous coordinates as x -> W - x, so the left edge is W - x2.
    const double x1 = flipped ? w - box[2] : box[0];
    const double x2 = flipped ? w - box[0] : box[2];
    eval::Detection d;
    d.image_id = image_id;
    d.category_id = contiguous_to_category[static_cast<std::size_t>(l[i])];
    d.x = x1;
    d.y = box[1];
    d.w = x2 - x1;
    d.h = box[3] - box[1];
    d.score = s[i];
    out.push_back(d);
  }
  return out;
}

}  // namespace focaldet::infer
