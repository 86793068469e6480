#include "anchors/anchor_generator.h"

#include <ATen/ATen.h>

#include <sstream>

#include "common/error.h"

namespace focaldet::anchors {

std::vector<std::vector<double>> anchor_sizes(const AnchorOptions& options) {
  std::vector<std::vector<double>> sizes;
  for (double base : options.base_sizes) {
    std::vector<double> level;
    for (double scale : options.octave_scales) {
      const double s = base * scale;
      // torchvision: int(x * 2 ** (1.0 / 3)), a truncation toward zero.
      level.push_back(options.truncate_sizes ? static_cast<double>(static_cast<int64_t>(s)) : s);
    }
    sizes.push_back(level);
  }
  return sizes;
}

AnchorGenerator::AnchorGenerator(AnchorOptions options) : options_(std::move(options)) {
  check(!options_.base_sizes.empty() && !options_.octave_scales.empty() &&
            !options_.aspect_ratios.empty(),
        "anchors: base_sizes, octave_scales and aspect_ratios must all be non-empty");
  for (double r : options_.aspect_ratios) {
    check(r > 0, "anchors: aspect ratio must be > 0, got " + std::to_string(r));
  }
  check(options_.strides.empty() || options_.strides.size() == options_.base_sizes.size(),
        "anchors: strides must be empty or one per level (" +
            std::to_string(options_.base_sizes.size()) + "), got " +
            std::to_string(options_.strides.size()));
  for (int64_t s : options_.strides)
    check(s > 0, "anchors: stride must be > 0, got " + std::to_string(s));
  for (const auto& level : anchor_sizes(options_)) {
    for (double s : level)
      check(s > 0, "anchors: anchor size must be > 0, got " + std::to_string(s));
    // Same float32 arithmetic as torchvision's generate_anchors, so the rounding agrees.
    const at::Tensor scales = at::tensor(std::vector<float>(level.begin(), level.end()));
    const at::Tensor ratios = at::tensor(
        std::vector<float>(options_.aspect_ratios.begin(), options_.aspect_ratios.end()));
    const at::Tensor h_ratios = at::sqrt(ratios);
    const at::Tensor w_ratios = 1 / h_ratios;
    const at::Tensor ws = (w_ratios.unsqueeze(1) * scales.unsqueeze(0)).reshape(-1);
    const at::Tensor hs = (h_ratios.unsqueeze(1) * scales.unsqueeze(0)).reshape(-1);
    cell_anchors_.push_back((at::stack({-ws, -hs, ws, hs}, 1) / 2).round());
  }
}

int64_t AnchorGenerator::anchors_per_location() const {
  return static_cast<int64_t>(options_.octave_scales.size() * options_.aspect_ratios.size());
}

std::size_t AnchorGenerator::cached_sizes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cache_.size();
}

std::vector<int64_t> AnchorGenerator::num_anchors_per_level(
    const std::vector<Size2>& feature_sizes) const {
  std::vector<int64_t> out;
  for (const auto& [h, w] : feature_sizes) out.push_back(h * w * anchors_per_location());
  return out;
}

at::Tensor AnchorGenerator::anchors(Size2 image_size, const std::vector<Size2>& feature_sizes,
                                    const at::Device& device) const {
  if (static_cast<int64_t>(feature_sizes.size()) != num_levels()) {
    throw Error("anchors: got " + std::to_string(feature_sizes.size()) +
                " feature maps but the generator has " + std::to_string(num_levels()) +
                " levels (base_sizes)");
  }
  std::ostringstream key;
  key << device << ':' << image_size.first << 'x' << image_size.second;
  for (const auto& [h, w] : feature_sizes) key << ',' << h << 'x' << w;
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto it = cache_.find(key.str()); it != cache_.end()) return it->second;

  std::vector<at::Tensor> levels;
  for (int64_t l = 0; l < num_levels(); ++l) {
    const auto [gh, gw] = feature_sizes[l];
    check(gh > 0 && gw > 0 && gh <= image_size.first && gw <= image_size.second,
          "anchors: level " + std::to_string(l) + " feature map " + std::to_string(gh) + "x" +
              std::to_string(gw) + " does not fit the image " + std::to_string(image_size.first) +
              "x" + std::to_string(image_size.second));
    const bool fixed = !options_.strides.empty();
    const int64_t stride_h = fixed ? options_.strides[l] : image_size.first / gh;
    const int64_t stride_w = fixed ? options_.strides[l] : image_size.second / gw;
    const at::Tensor shift_x = at::arange(gw, at::kInt) * stride_w;
    const at::Tensor shift_y = at::arange(gh, at::kInt) * stride_h;
    const auto grid = at::meshgrid({shift_y, shift_x}, "ij");
    const at::Tensor sx = grid[1].reshape(-1);
    const at::Tensor sy = grid[0].reshape(-1);
    const at::Tensor shifts = at::stack({sx, sy, sx, sy}, 1);
    // [HW, 1, 4] + [1, A, 4]: location-major, then the cell anchors.
    levels.push_back(
        (shifts.view({-1, 1, 4}) + cell_anchors_[l].view({1, -1, 4})).reshape({-1, 4}));
  }
  at::Tensor all = at::cat(levels, 0).to(device);
  // Multi-scale training meets a bounded but possibly large set of padded sizes; starting over
  // past the bound keeps memory flat at the price of recomputing (cheap) anchors.
  if (cache_.size() >= kMaxCachedSizes) cache_.clear();
  cache_.emplace(key.str(), all);
  return all;
}

}  // namespace focaldet::anchors
