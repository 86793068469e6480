#pragma once
// The normalisation layers a backbone or head can use, behind one factory so the blocks that
// hold them stay the same. Parameter names follow torchvision (weight, bias, running_mean,
// running_var) so state dicts load by name.
#include <torch/nn/module.h>
#include <torch/nn/modules/container/any.h>

#include <cstdint>
#include <string>

namespace focaldet::model {

enum class NormKind {
  kBatchNorm,        // trained statistics (small-batch CPU training makes these noisy)
  kFrozenBatchNorm,  // statistics and affine frozen: the detection default with pretrained weights
  kGroupNorm,        // batch-independent (Wu & He 2018)
};

NormKind parse_norm_kind(const std::string& name);  // "bn" | "frozen_bn" | "gn"

// y = x * weight / sqrt(running_var + eps) + (bias - running_mean * scale), all four buffers,
// not parameters: torchvision's ops.FrozenBatchNorm2d (eps 1e-5).
class FrozenBatchNorm2dImpl : public torch::nn::Module {
 public:
  explicit FrozenBatchNorm2dImpl(int64_t channels, double eps = 1e-5);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  double eps_;
  torch::Tensor weight_, bias_, running_mean_, running_var_;
};
TORCH_MODULE(FrozenBatchNorm2d);

// A normalisation layer over `channels`; `groups` only for kGroupNorm.
torch::nn::AnyModule make_norm(NormKind kind, int64_t channels, int64_t groups = 32);

}  // namespace focaldet::model
