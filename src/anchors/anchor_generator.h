#pragma once
// Anchors of every pyramid level on the (padded) input image, in torchvision's order, so a head
// output row and an anchor row mean the same box (AnchorGenerator in torchvision 0.14,
// models/detection/anchor_utils.py).
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace focaldet::anchors {

struct AnchorOptions {
  // Size (side of the square anchor, input pixels) of the first octave of each level, P3..P7.
  std::vector<double> base_sizes = {32, 64, 128, 256, 512};
  // Octave scales within a level: 2^0, 2^(1/3), 2^(2/3) (Lin et al. 2017, sec. 4).
  std::vector<double> octave_scales = {1.0, 1.2599210498948732, 1.5874010519681994};
  // Aspect ratios, height / width.
  std::vector<double> aspect_ratios = {0.5, 1.0, 2.0};
  // torchvision truncates the scaled sizes to integers (int(32 * 2^(1/3)) = 40); keep it for
  // parity with its pretrained models.
  bool truncate_sizes = true;
  // Anchor spacing of each level, input pixels (8, 16, .. for P3, P4, ..: the feature map's own
  // stride). Empty: torchvision's padded image size // feature size per axis, which differs
  // from the feature stride at P6 and P7 unless the padded size is a multiple of 128.
  std::vector<int64_t> strides;
};

// (height, width) pairs.
using Size2 = std::pair<int64_t, int64_t>;

// The sizes per level that `options` describe: sizes[level][octave].
std::vector<std::vector<double>> anchor_sizes(const AnchorOptions& options);

class AnchorGenerator {
 public:
  explicit AnchorGenerator(AnchorOptions options = {});

  int64_t num_levels() const { return static_cast<int64_t>(cell_anchors_.size()); }
  // Anchors per feature-map location: ratios x octave scales (9 by default).
  int64_t anchors_per_location() const;
  // Zero-centred anchors of one location of `level`: [anchors_per_location, 4] float,
  // ratio-major (for each ratio, each octave), rounded to integers as torchvision does.
  const at::Tensor& cell_anchors(int64_t level) const { return cell_anchors_.at(level); }

  // All anchors for a batch whose padded image tensor is `image_size` and whose level l feature
  // map is feature_sizes[l]: [sum_l H_l * W_l * A, 4] float (x1, y1, x2, y2), input pixels;
  // within a level ordered by (y, x, anchor). Stride of a level = image_size / feature size
  // (integer division per axis); anchor centres sit at (x * stride, y * stride). Cached per
  // (image size, feature sizes, device); thread-safe. The returned tensor is
  // the cached one: do not modify it in place.
  at::Tensor anchors(Size2 image_size, const std::vector<Size2>& feature_sizes,
                     const at::Device& device) const;

  // H_l * W_l * A per level, the split of the concatenated anchors / head outputs.
  std::vector<int64_t> num_anchors_per_level(const std::vector<Size2>& feature_sizes) const;

  // How many (image size, feature sizes, device) entries the cache holds; at most
  // kMaxCachedSizes.
  std::size_t cached_sizes() const;
  static constexpr std::size_t kMaxCachedSizes = 64;

 private:
  AnchorOptions options_;
  std::vector<at::Tensor> cell_anchors_;
  mutable std::mutex mutex_;
  mutable std::map<std::string, at::Tensor> cache_;
};

}  // namespace focaldet::anchors
