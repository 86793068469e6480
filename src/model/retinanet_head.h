#pragma once
// RetinaNet's class and box subnets (Lin et al. 2017, sec. 4, Fig. 3): each N x (3x3 conv with
// M channels, [GroupNorm], ReLU) then a 3x3 conv to A*C logits or A*4 deltas, shared across
// levels. Weights N(0, 0.01), biases 0, except the class bias b = -log((1 - pi) / pi) so every
// anchor starts at foreground probability pi (sec. 4.1, "Initialization").
// Parameter names match torchvision's head (classification_head.conv.0.0, .cls_logits,
// regression_head.conv.0.0, .bbox_reg).
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/normalization.h>

#include <cstdint>
#include <vector>

#include "model/norm.h"
#include "model/winograd_conv.h"
#include "model/winograd_head.h"

namespace focaldet::model {

struct HeadOptions {
  int64_t in_channels = 256;  // FPN channels
  int64_t num_convs = 4;      // N (the paper: 4)
  int64_t channels = 256;     // M (the paper: 256)
  bool group_norm = false;    // GroupNorm after each conv (then the convs have no bias)
  int64_t gn_groups = 32;
  int64_t num_anchors = 9;   // per location
  int64_t num_classes = 80;  // C, no background class (sigmoid outputs)
  double prior = 0.01;       // pi
  // oneDNN's Winograd convolution where the build and CPU have it: blocked inference
  // (RetinaNetOptions::blocked_inference, no GroupNorm) runs the head on model/winograd_head.h,
  // training (GroupNorm or not) on model/winograd_conv.h.
  bool winograd = true;
};

struct HeadOutput {
  torch::Tensor cls_logits;  // [B, A_total, C]
  torch::Tensor box_deltas;  // [B, A_total, 4]
};

class RetinaNetHeadImpl : public torch::nn::Module {
 public:
  explicit RetinaNetHeadImpl(const HeadOptions& options = {});
  // features: P3..P7. Rows of the outputs: levels in order, within a level (y, x, anchor).
  HeadOutput forward(const std::vector<torch::Tensor>& features);
  const HeadOptions& options() const { return options_; }
  // Whether blocked inference runs on oneDNN's Winograd convolution (HeadOptions::winograd).
  bool uses_winograd() const { return winograd_.defined(); }
  // Whether training (grad mode) runs the head's convs on Winograd (HeadOptions::winograd).
  bool trains_winograd() const { return winograd_training_; }

 private:
  HeadOptions options_;
  torch::nn::ModuleList cls_tower_{nullptr}, box_tower_{nullptr};  // of Sequential blocks
  torch::nn::Conv2d cls_logits_{nullptr}, bbox_reg_{nullptr};
  // Runners of the towers' convs and the two output convs, for blocked (mkldnn) inputs.
  std::vector<ConvNorm> cls_convs_, box_convs_;
  ConvNorm cls_logits_run_, bbox_reg_run_;
  WinogradHead winograd_;  // undefined without oneDNN's Winograd or with GroupNorm
  // Training (grad mode) on Winograd convs (model/winograd_conv.h): the towers' convs.
  bool winograd_training_ = false;
  std::vector<torch::nn::Conv2d> cls_tower_convs_, box_tower_convs_;
  std::vector<torch::nn::GroupNorm> cls_tower_norms_, box_tower_norms_;  // with group_norm
  // Inference (no grad mode) on those convs, then the output conv: each keeps its weight in
  // Winograd's domain across calls and levels instead of transforming it at every call.
  std::vector<WinogradInference> cls_inference_, box_inference_;
};
TORCH_MODULE(RetinaNetHead);

}  // namespace focaldet::model
