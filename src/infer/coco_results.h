#pragma once
// One image's detections as COCO results entries (eval::Detection): what the evaluator and the
// detections json take. Boxes become [x, y, width, height] in original pixels, training class
// indices become the dataset's category ids, and a horizontal flip of the image is undone.
#include <cstdint>
#include <vector>

#include "eval/detection.h"
#include "infer/postprocess.h"

namespace focaldet::infer {

// dets: postprocess's output for the image (boxes x1 y1 x2 y2, already in original pixels);
// contiguous_to_category[c]: the dataset's category id of class index c
// (data::CocoDataset::contiguous_to_category). flipped: the image was mirrored horizontally
// before the model saw it; each box is mirrored back about the original width W, as the loader's
// flip of continuous coordinates: x1' = W - x2, x2' = W - x1. Entries keep the order of `dets`
// (scores decreasing). Throws focaldet::Error for a label without a category.
std::vector<eval::Detection> to_coco_results(const Detections& dets, int64_t image_id,
                                             const std::vector<int64_t>& contiguous_to_category,
                                             bool flipped, int original_width);

}  // namespace focaldet::infer
