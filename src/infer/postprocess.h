#pragma once
// RetinaNet inference (Lin et al. 2017, sec. 4, "Inference"), step for step as torchvision's
// RetinaNet.postprocess_detections: per level, keep class scores above score_thresh, the top
// topk_per_level of them, decode their boxes and clip them to the image; then class-wise NMS
// over all levels and the max_detections best. Boxes are then divided by the image's resize
// scale, so they are in the original image's pixels. Scores are sigmoid probabilities, or, for
// a head trained with softmax focal loss (softmax_background), the C+1-way softmax without its
// background column.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "anchors/anchor_generator.h"
#include "anchors/box_coder.h"

namespace focaldet::infer {

struct PostprocessOptions {
  double score_thresh = 0.05;
  int64_t topk_per_level = 1000;
  double nms_thresh = 0.5;
  int64_t max_detections = 100;
  // cls_logits are [B, A, C+1] with the background in the last column (loss::softmax_focal's
  // layout): scores are the softmax over the C+1 columns, background dropped. Off: [B, A, C]
  // with one sigmoid per class.
  bool softmax_background = false;
  anchors::BoxCoderOptions box_coder;
};

struct Detections {
  at::Tensor boxes;   // [K, 4] float (x1, y1, x2, y2), original image pixels
  at::Tensor scores;  // [K] float, class probability (see softmax_background), decreasing
  at::Tensor labels;  // [K] int64, contiguous class index
};

struct ImageInfo {
  anchors::Size2 size;  // (height, width) of the resized image inside the padded batch: clip here
  double scale = 1.0;   // resized = original * scale
};

// cls_logits: [B, A, C], or [B, A, C+1] with softmax_background; box_deltas: [B, A, 4];
// anchors: [A, 4] (AnchorGenerator::anchors); num_anchors_per_level sums to A; images: B
// entries. Runs under no-grad.
std::vector<Detections> postprocess(const at::Tensor& cls_logits, const at::Tensor& box_deltas,
                                    const at::Tensor& anchors,
                                    const std::vector<int64_t>& num_anchors_per_level,
                                    const std::vector<ImageInfo>& images,
                                    const PostprocessOptions& options = {});

}  // namespace focaldet::infer
