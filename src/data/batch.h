#pragma once
// What the loader hands the trainer: B images padded into one tensor, with their targets and the
// bookkeeping that maps detections back to original pixels. Index i of every vector is image i
// of `images`.
#include <torch/types.h>

#include <array>
#include <cstdint>
#include <vector>

namespace focaldet::data {

struct Batch {
  // [B, 3, H, W] float32: RGB, normalised ((v / 255 - mean) / std), image i in the top-left
  // corner of its slot and 0 (the mean colour) in the padding; H and W are multiples of the
  // loader's pad_divisor (128 by default, the stride of P7).
  torch::Tensor images;
  std::vector<torch::Tensor> boxes;        // B x [n_i, 4] float32, x1 y1 x2 y2, resized (and
                                           // flipped) image pixels, continuous coordinates
  std::vector<torch::Tensor> labels;       // B x [n_i] int64, contiguous class index in [0, C)
  std::vector<torch::Tensor> crowd_boxes;  // B x [m_i, 4] float32, iscrowd regions (ignore),
                                           // same coordinates as `boxes`
  std::vector<int64_t> image_ids;          // the dataset's image ids
  std::vector<double> scales;              // resized = original * scale; boxes / scale gives
                                           // original pixels (after undoing a flip)
  std::vector<std::array<int, 2>> original_sizes;  // (height, width) as decoded
  std::vector<std::array<int, 2>> image_sizes;     // (height, width) resized, before padding
  std::vector<bool> flipped;                       // whether image i was mirrored horizontally
  int64_t epoch = 0;                               // the epoch this batch belongs to
  int64_t index = 0;                               // its position in the epoch on this rank

  int64_t size() const { return static_cast<int64_t>(image_ids.size()); }
};

}  // namespace focaldet::data
