#pragma once
// Detections drawn on an image for people to look at (`focaldet predict`): a box per detection
// in its class's colour, with the class name and score on a filled label. No torch here.
#include <cstdint>
#include <opencv2/core/mat.hpp>
#include <string>
#include <vector>

#include "eval/detection.h"

namespace focaldet::infer {

// image: BGR uint8, original pixels (the detections' coordinates). classes[k] is detection k's
// class index into `names`. Detections scoring below `min_score` are not drawn. Throws
// focaldet::Error when the sizes disagree or a class index has no name.
void draw_detections(cv::Mat& image, const std::vector<eval::Detection>& detections,
                     const std::vector<int64_t>& classes, const std::vector<std::string>& names,
                     double min_score);

}  // namespace focaldet::infer
