#pragma once
// ResNet-18/34/50 (He et al. 2016) as torchvision builds it (v1.5: the stride of a bottleneck
// sits on its 3x3 conv), without the classifier; parameter names match torchvision's
// state dict (conv1, bn1, layer1.0.conv1, layer1.0.downsample.0, ...).
#include <torch/nn/module.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>

#include <cstdint>
#include <vector>

#include "model/norm.h"

namespace focaldet::model {

struct ResNetOptions {
  int depth = 50;  // 18, 34 or 50
  int64_t width = 64;  // channels of the stem and layer1; layers 2-4 double it (torchvision: 64)
  NormKind norm = NormKind::kFrozenBatchNorm;
  int64_t gn_groups = 32;
  bool winograd = false;  // dense 3x3 stride-1 convs on oneDNN's Winograd (model/winograd_conv.h)
};

class ResNetImpl : public torch::nn::Module {
 public:
  explicit ResNetImpl(const ResNetOptions& options = {});
  // x: [B, 3, H, W] normalised. Returns C3, C4, C5 (strides 8, 16, 32).
  std::vector<torch::Tensor> forward(const torch::Tensor& x);
  // Channels of C3, C4, C5: 128/256/512 (18, 34) or 512/1024/2048 (50), times width / 64.
  std::vector<int64_t> out_channels() const;

 private:
  int depth_;
  int64_t width_;
  ConvNorm stem_;  // conv1 + bn1
  torch::nn::Sequential layer1_{nullptr}, layer2_{nullptr}, layer3_{nullptr}, layer4_{nullptr};
};
TORCH_MODULE(ResNet);

}  // namespace focaldet::model
