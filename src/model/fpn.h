#pragma once
// Feature pyramid P3-P7 on C3-C5 (Lin et al. 2017, FPN; RetinaNet sec. 4): 1x1 lateral convs,
// nearest-neighbour top-down sum, 3x3 output convs; P6 a stride-2 3x3 conv on P5 (torchvision's
// LastLevelP6P7 with in == out channels) or on C5 (the paper), P7 = conv(relu(P6)).
// Parameter names match torchvision's backbone.fpn (inner_blocks.0.0, layer_blocks.0.0,
// extra_blocks.p6, extra_blocks.p7).
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>

#include <cstdint>
#include <vector>

#include "model/norm.h"

namespace focaldet::model {

enum class P6Source { kP5, kC5 };

struct FpnOptions {
  std::vector<int64_t> in_channels = {512, 1024, 2048};  // C3, C4, C5
  int64_t out_channels = 256;
  P6Source p6_from = P6Source::kP5;  // torchvision's RetinaNet: P5
  bool winograd = false;  // dense 3x3 stride-1 convs on oneDNN's Winograd (model/winograd_conv.h)
};

class FpnImpl : public torch::nn::Module {
 public:
  explicit FpnImpl(const FpnOptions& options = {});
  // c: C3, C4, C5. Returns P3..P7, each [B, out_channels, H_l, W_l].
  std::vector<torch::Tensor> forward(const std::vector<torch::Tensor>& c);

 private:
  FpnOptions options_;
  torch::nn::ModuleList inner_blocks_{nullptr}, layer_blocks_{nullptr};
  torch::nn::Conv2d p6_{nullptr}, p7_{nullptr};
  std::vector<ConvNorm> inner_, layer_;  // runners of inner_blocks_ and layer_blocks_
  ConvNorm p6_run_, p7_run_;
};
TORCH_MODULE(Fpn);

}  // namespace focaldet::model
