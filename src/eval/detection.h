#pragma once
// One detection in COCO results format: what a results json entry holds, and what the trainer
// hands to the evaluator. No torch in this header.
#include <cstdint>

namespace focaldet::eval {

struct Detection {
  int64_t image_id = 0;
  int64_t category_id = 0;            // the dataset's category id (not the training index)
  double x = 0, y = 0, w = 0, h = 0;  // "bbox": [x, y, width, height] in original pixels
  double score = 0;
};

}  // namespace focaldet::eval
