#pragma once
// Small builders for hand-made ground truth and detections in the evaluator's tests.
#include <cstdint>
#include <initializer_list>
#include <vector>

#include "data/coco_dataset.h"
#include "eval/detection.h"

namespace focaldet::test {

struct Box {
  double x, y, w, h;
};

// Ground truth with the given image ids and category ids (names "c<id>"); annotations added
// with add(); `area` < 0 means w * h.
struct GtBuilder {
  data::CocoDataset ds;
  GtBuilder(std::initializer_list<int64_t> images, std::initializer_list<int64_t> categories) {
    for (int64_t id : images)
      ds.images.push_back({id, "img" + std::to_string(id) + ".jpg", 640, 480});
    for (int64_t id : categories) ds.categories.push_back({id, "c" + std::to_string(id)});
  }
  GtBuilder& add(int64_t image, int64_t category, Box b, bool crowd = false, double area = -1) {
    data::CocoAnnotation a;
    a.id = static_cast<int64_t>(ds.annotations.size()) + 1;
    a.image_id = image;
    a.category_id = category;
    a.x = b.x;
    a.y = b.y;
    a.w = b.w;
    a.h = b.h;
    a.area = area < 0 ? b.w * b.h : area;
    a.iscrowd = crowd;
    ds.annotations.push_back(a);
    return *this;
  }
};

inline eval::Detection det(int64_t image, int64_t category, Box b, double score) {
  eval::Detection d;
  d.image_id = image;
  d.category_id = category;
  d.x = b.x;
  d.y = b.y;
  d.w = b.w;
  d.h = b.h;
  d.score = score;
  return d;
}

}  // namespace focaldet::test
