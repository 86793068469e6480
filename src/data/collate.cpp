#include "data/collate.h"

#include <ATen/ops/empty.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "common/error.h"

namespace focaldet::data {

namespace {

int round_up(int v, int divisor) { return (v + divisor - 1) / divisor * divisor; }

// [n, 4] float32 from plain boxes (Box is four packed floats).
torch::Tensor boxes_tensor(const std::vector<Box>& boxes) {
  static_assert(sizeof(Box) == 4 * sizeof(float), "Box must be four packed floats");
  torch::Tensor t = at::empty({static_cast<int64_t>(boxes.size()), 4}, at::kFloat);
  if (!boxes.empty()) std::memcpy(t.data_ptr<float>(), boxes.data(), boxes.size() * sizeof(Box));
  return t;
}

torch::Tensor labels_tensor(const std::vector<int64_t>& labels) {
  torch::Tensor t = at::empty({static_cast<int64_t>(labels.size())}, at::kLong);
  if (!labels.empty()) {
    std::memcpy(t.data_ptr<int64_t>(), labels.data(), labels.size() * sizeof(int64_t));
  }
  return t;
}

}  // namespace

std::array<int, 2> padded_size(const std::vector<TransformedSample>& samples, int pad_divisor) {
  check(pad_divisor >= 1, "collate: pad_divisor must be >= 1, got " + std::to_string(pad_divisor));
  int h = 0, w = 0;
  for (const TransformedSample& s : samples) {
    h = std::max(h, s.image.rows);
    w = std::max(w, s.image.cols);
  }
  return {round_up(h, pad_divisor), round_up(w, pad_divisor)};
}

Batch collate(const std::vector<TransformedSample>& samples, const TransformOptions& options,
              int pad_divisor, BufferPool* pool) {
  check(!samples.empty(), "collate: empty batch");
  const auto [height, width] = padded_size(samples, pad_divisor);
  const auto b = static_cast<int64_t>(samples.size());
  Batch batch;
  batch.images = pool != nullptr ? pool->empty({b, 3, height, width})
                                 : at::empty({b, 3, height, width}, at::kFloat);
  float* base = batch.images.data_ptr<float>();
  const size_t slot = static_cast<size_t>(3) * height * width;
  for (int64_t i = 0; i < b; ++i) {
    const TransformedSample& s = samples[i];
    write_normalized(s, options, base + i * slot, height, width);
    batch.boxes.push_back(boxes_tensor(s.boxes));
    batch.labels.push_back(labels_tensor(s.labels));
    batch.crowd_boxes.push_back(boxes_tensor(s.crowd_boxes));
    batch.image_ids.push_back(s.image_id);
    batch.scales.push_back(s.scale);
    batch.original_sizes.push_back({s.original_height, s.original_width});
    batch.image_sizes.push_back({s.image.rows, s.image.cols});
    batch.flipped.push_back(s.params.flip);
  }
  return batch;
}

}  // namespace focaldet::data
