#include "infer/postprocess.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>

#include "anchors/box_ops.h"
#include "common/error.h"
#include "infer/nms.h"

namespace focaldet::infer {

std::vector<Detections> postprocess(const at::Tensor& cls_logits, const at::Tensor& box_deltas,
                                    const at::Tensor& anchors,
                                    const std::vector<int64_t>& num_anchors_per_level,
                                    const std::vector<ImageInfo>& images,
                                    const PostprocessOptions& o) {
  check(o.topk_per_level > 0 && o.max_detections > 0,
        "postprocess: topk_per_level and max_detections must be > 0, got " +
            std::to_string(o.topk_per_level) + " and " + std::to_string(o.max_detections));
  check(std::isfinite(o.score_thresh) && std::isfinite(o.nms_thresh),
        "postprocess: score_thresh and nms_thresh must be finite");
  check(cls_logits.dim() == 3 && (!o.softmax_background || cls_logits.size(2) >= 2),
        std::string("postprocess: cls_logits must be ") +
            (o.softmax_background ? "[B, A, C+1] with C >= 1 (softmax_background)" : "[B, A, C]") +
            ", got " + c10::str(cls_logits.sizes()));
  const int64_t batch = cls_logits.size(0), num_anchors = cls_logits.size(1);
  // Softmax focal's background is the last column (loss/softmax_focal.h): classes are 0..C-1.
  const int64_t num_classes = cls_logits.size(2) - (o.softmax_background ? 1 : 0);
  check(box_deltas.dim() == 3 && box_deltas.size(0) == batch && box_deltas.size(1) == num_anchors &&
            box_deltas.size(2) == 4,
        "postprocess: box_deltas must be [" + std::to_string(batch) + ", " +
            std::to_string(num_anchors) + ", 4], got " + c10::str(box_deltas.sizes()));
  check(anchors.dim() == 2 && anchors.size(0) == num_anchors && anchors.size(1) == 4,
        "postprocess: anchors must be [" + std::to_string(num_anchors) + ", 4], got " +
            c10::str(anchors.sizes()));
  int64_t total = 0;
  for (int64_t n : num_anchors_per_level) total += n;
  check(total == num_anchors, "postprocess: num_anchors_per_level sums to " +
                                  std::to_string(total) + ", expected " +
                                  std::to_string(num_anchors));
  check(static_cast<int64_t>(images.size()) == batch,
        "postprocess: " + std::to_string(images.size()) + " image infos for a batch of " +
            std::to_string(batch));
  c10::AutoGradMode no_grad(false);

  std::vector<Detections> out;
  for (int64_t i = 0; i < batch; ++i) {
    std::vector<at::Tensor> boxes, scores, labels;
    int64_t start = 0;
    for (int64_t n : num_anchors_per_level) {
      const at::Tensor logits = cls_logits[i].slice(0, start, start + n);
      const at::Tensor deltas = box_deltas[i].slice(0, start, start + n);
      const at::Tensor level_anchors = anchors.slice(0, start, start + n);
      start += n;
      // Scores of every (anchor, class) pair, flattened anchor-major as torchvision does.
      const at::Tensor s =
          o.softmax_background
              ? at::softmax(logits, /*dim=*/1).slice(/*dim=*/1, 0, num_classes).reshape({-1})
              : at::sigmoid(logits).flatten();
      const at::Tensor candidates = at::nonzero(s > o.score_thresh).view(-1);
      const int64_t k = std::min<int64_t>(o.topk_per_level, candidates.size(0));
      auto [top_scores, top] = s.index_select(0, candidates).topk(k);
      const at::Tensor idx = candidates.index_select(0, top);
      const at::Tensor anchor_idx = at::div(idx, num_classes, "floor");
      const at::Tensor b =
          anchors::decode_boxes(deltas.index_select(0, anchor_idx),
                                level_anchors.index_select(0, anchor_idx), o.box_coder);
      boxes.push_back(anchors::clip_boxes(b, images[i].size.first, images[i].size.second));
      scores.push_back(top_scores);
      labels.push_back(idx.remainder(num_classes));
    }
    Detections d;
    const at::Tensor all_boxes = at::cat(boxes), all_scores = at::cat(scores);
    const at::Tensor all_labels = at::cat(labels);
    at::Tensor keep = batched_nms(all_boxes, all_scores, all_labels, o.nms_thresh);
    keep = keep.slice(0, 0, std::min<int64_t>(o.max_detections, keep.size(0)));
    check(images[i].scale > 0, "postprocess: image " + std::to_string(i) + " has scale " +
                                   std::to_string(images[i].scale) + ", must be > 0");
    d.boxes = all_boxes.index_select(0, keep) / images[i].scale;
    d.scores = all_scores.index_select(0, keep);
    d.labels = all_labels.index_select(0, keep);
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace focaldet::infer
