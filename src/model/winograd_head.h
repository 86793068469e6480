#pragma once
// The inference path of RetinaNet's head on oneDNN's Winograd convolution. Every conv of the
// head is 3x3 with stride 1, the case Winograd's algorithm takes 2.25-4x fewer multiplications
// for: F(4x4, 3x3) on the larger maps, F(2x2, 3x3) on the small ones, as oneDNN picks (measured
// here: 2.7-3x faster than oneDNN's direct convolution for the head's 256-channel convs, with
// AVX-512). Bias and ReLU are fused into each conv, activations stay in oneDNN's blocked layout
// between the convs of a tower, and the output convs write NHWC, which is already the head's
// row order (y, x, anchor, class), so no permute copy follows.
// Results differ from the direct convolution by float rounding (~1e-6 relative per conv: the
// transforms round differently). Without oneDNN at build time, or without Winograd on the CPU,
// available() is false and the head keeps its other paths.
#include <ATen/core/Tensor.h>
#include <torch/nn/modules/conv.h>

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace focaldet::model {

class WinogradHead {
 public:
  WinogradHead() = default;
  // The towers' convs (each followed by ReLU) and the two output convs, all with bias.
  WinogradHead(std::vector<torch::nn::Conv2d> cls_tower, torch::nn::Conv2d cls_logits,
               std::vector<torch::nn::Conv2d> box_tower, torch::nn::Conv2d bbox_reg);
  // Whether this build and this CPU run oneDNN's Winograd convolution (checked once).
  static bool available();
  bool defined() const { return impl_ != nullptr; }
  // One pyramid level, x dense [B, C, H, W] float, inference only. Returns the class logits
  // [B, H*W*A, num_classes] and the box deltas [B, H*W*A, 4].
  std::pair<at::Tensor, at::Tensor> forward(const at::Tensor& x, int64_t num_classes);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace focaldet::model
