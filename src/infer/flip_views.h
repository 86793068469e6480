#pragma once
// Test-time augmentation by mirroring (detectron2's and Ultralytics' flip TTA): the detector
// also runs on mirrored copies of the batch, each view's detections are mirrored back into the
// original image, and class-wise NMS over all views keeps the best max_detections.
#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "anchors/anchor_generator.h"
#include "infer/postprocess.h"

namespace focaldet::infer {

struct FlipView {
  bool horizontal = false;
  bool vertical = false;
  bool identity() const { return !horizontal && !vertical; }
};

// none: the image alone; hflip: and its left-right mirror; hvflip: and its up-down mirror and
// both mirrors (4 views, for data without an up: cells, aerial images). Anything else: an Error.
std::vector<FlipView> flip_views(const std::string& mode);

// images: [B, C, H, W], padded batch; sizes[i]: (h, w) of image i in its top-left corner. Each
// image is mirrored inside its own h x w, so the padding stays where it was (bottom, right).
at::Tensor flip_images(const at::Tensor& images, const std::vector<anchors::Size2>& sizes,
                       FlipView view);

// Detections of a mirrored view, in the original image's pixels, mirrored back: the original
// image is image.size / image.scale pixels.
Detections unflip(const Detections& d, const ImageInfo& image, FlipView view);

// The detections of one image from all views: class-wise NMS at nms_thresh over their union,
// then the max_detections best, by decreasing score.
Detections merge_views(const std::vector<Detections>& views, double nms_thresh,
                       int64_t max_detections);

}  // namespace focaldet::infer
