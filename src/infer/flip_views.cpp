#include "infer/flip_views.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <tuple>

#include "common/error.h"
#include "infer/nms.h"

namespace focaldet::infer {

std::vector<FlipView> flip_views(const std::string& mode) {
  if (mode == "none") return {FlipView{}};
  if (mode == "hflip") return {FlipView{}, FlipView{true, false}};
  if (mode == "hvflip") {
    return {FlipView{}, FlipView{true, false}, FlipView{false, true}, FlipView{true, true}};
  }
  throw Error("inference.tta: must be one of none, hflip, hvflip; got '" + mode + "'");
}

at::Tensor flip_images(const at::Tensor& images, const std::vector<anchors::Size2>& sizes,
                       FlipView view) {
  check(images.dim() == 4 && static_cast<int64_t>(sizes.size()) == images.size(0),
        "flip_images: need [B, C, H, W] images and one size per image");
  if (view.identity()) return images;
  std::vector<int64_t> dims;
  if (view.vertical) dims.push_back(1);
  if (view.horizontal) dims.push_back(2);
  at::Tensor out = images.clone();
  for (int64_t i = 0; i < images.size(0); ++i) {
    const auto [h, w] = sizes[i];
    check(h <= images.size(2) && w <= images.size(3), "flip_images: image larger than the batch");
    const at::Tensor region = images[i].narrow(1, 0, h).narrow(2, 0, w);
    out[i].narrow(1, 0, h).narrow(2, 0, w).copy_(region.flip(dims));
  }
  return out;
}

Detections unflip(const Detections& d, const ImageInfo& image, FlipView view) {
  if (view.identity()) return d;
  const double height = image.size.first / image.scale, width = image.size.second / image.scale;
  Detections out = d;
  // x1' = W - x2, x2' = W - x1 (and the same in y): continuous pixel coordinates.
  const at::Tensor b = d.boxes;
  at::Tensor x1 = b.select(1, 0), y1 = b.select(1, 1), x2 = b.select(1, 2), y2 = b.select(1, 3);
  if (view.horizontal) std::tie(x1, x2) = std::make_tuple(width - x2, width - x1);
  if (view.vertical) std::tie(y1, y2) = std::make_tuple(height - y2, height - y1);
  out.boxes = at::stack({x1, y1, x2, y2}, 1);
  return out;
}

Detections merge_views(const std::vector<Detections>& views, double nms_thresh,
                       int64_t max_detections) {
  check(!views.empty(), "merge_views: no views");
  std::vector<at::Tensor> boxes, scores, labels;
  for (const Detections& v : views) {
    boxes.push_back(v.boxes);
    scores.push_back(v.scores);
    labels.push_back(v.labels);
  }
  const at::Tensor all_boxes = at::cat(boxes), all_scores = at::cat(scores);
  const at::Tensor all_labels = at::cat(labels);
  at::Tensor keep = batched_nms(all_boxes, all_scores, all_labels, nms_thresh);
  keep = keep.slice(0, 0, std::min<int64_t>(max_detections, keep.size(0)));
  return {all_boxes.index_select(0, keep), all_scores.index_select(0, keep),
          all_labels.index_select(0, keep)};
}

}  // namespace focaldet::infer
