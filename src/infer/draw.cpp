#include "infer/draw.h"

#include <algorithm>
#include <cstdio>
#include <opencv2/imgproc.hpp>

#include "common/error.h"

namespace focaldet::infer {
namespace {

// A colour per class, far apart in hue, as BGR.
cv::Scalar class_colour(int64_t label) {
  static const cv::Scalar palette[] = {{60, 60, 230},   {230, 160, 40}, {80, 200, 60},
                                       {200, 60, 200},  {40, 200, 230}, {160, 100, 40},
                                       {120, 120, 250}, {250, 220, 120}};
  return palette[label % 8];
}

}  // namespace

void draw_detections(cv::Mat& image, const std::vector<eval::Detection>& detections,
                     const std::vector<int64_t>& classes, const std::vector<std::string>& names,
                     double min_score) {
  check(image.type() == CV_8UC3, "draw_detections: expected an 8-bit BGR image");
  check(classes.size() == detections.size(),
        "draw_detections: " + std::to_string(classes.size()) + " class indices for " +
            std::to_string(detections.size()) + " detections");
  // Lines and text grow with the image so they stay readable on large photos.
  const int thickness = std::max(1, std::min(image.cols, image.rows) / 300);
  const double font_scale = 0.45 * thickness;
  for (std::size_t k = 0; k < detections.size(); ++k) {
    const eval::Detection& d = detections[k];
    if (d.score < min_score) continue;
    check(classes[k] >= 0 && classes[k] < static_cast<int64_t>(names.size()),
          "draw_detections: class index " + std::to_string(classes[k]) + " has no name");
    const cv::Scalar colour = class_colour(classes[k]);
    const cv::Point p1(static_cast<int>(d.x), static_cast<int>(d.y));
    const cv::Point p2(static_cast<int>(d.x + d.w), static_cast<int>(d.y + d.h));
    cv::rectangle(image, p1, p2, colour, thickness);
    char text[128];
    std::snprintf(text, sizeof text, "%s %.2f", names[classes[k]].c_str(), d.score);
    int baseline = 0;
    const cv::Size size = cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, font_scale, 1, &baseline);
    const int top = std::max(0, p1.y - size.height - baseline - 2);
    cv::rectangle(image, cv::Point(p1.x, top),
                  cv::Point(p1.x + size.width + 2, top + size.height + baseline + 2), colour,
                  cv::FILLED);
    cv::putText(image, text, cv::Point(p1.x + 1, top + size.height + 1), cv::FONT_HERSHEY_SIMPLEX,
                font_scale, cv::Scalar(255, 255, 255), 1, cv::LINE_AA);
  }
}

}  // namespace focaldet::infer
