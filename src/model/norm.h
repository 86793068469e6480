#pragma once
// The normalisation layers a backbone or head can use, behind one factory so the blocks that
// hold them stay the same. Parameter names follow torchvision (weight, bias, running_mean,
// running_var) so state dicts load by name.
#include <torch/nn/module.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/modules/conv.h>

#include <array>
#include <cstdint>
#include <string>
#include <utility>

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
  // The per-channel (scale, shift) of forward(): y = x * scale + shift, both [C].
  std::pair<torch::Tensor, torch::Tensor> scale_shift() const;
  // The four buffers, for ConvNorm's cache check.
  std::array<torch::Tensor, 4> buffers() const {
    return {weight_, bias_, running_mean_, running_var_};
  }

 private:
  double eps_;
  torch::Tensor weight_, bias_, running_mean_, running_var_;
};
TORCH_MODULE(FrozenBatchNorm2d);

// A normalisation layer over `channels`; `groups` only for kGroupNorm.
torch::nn::AnyModule make_norm(NormKind kind, int64_t channels, int64_t groups = 32);

// norm(conv(x)) for a conv (no bias) followed by a norm layer, both registered by their owner.
// Without grad mode (inference, evaluation) a FrozenBatchNorm2d is folded into the conv:
// conv(x, w * scale, shift), one pass over the output instead of three (conv, mul, add). The
// folded weight and bias are cached and rebuilt when a source tensor changes (its version
// counter or storage: load_weights and optimizer steps bump the version). With grad mode on,
// or another norm, it is conv then norm as before, so training and its gradients are untouched.
// Results differ from conv-then-norm by float rounding only (the products are summed in another
// order).
class ConvNorm {
 public:
  ConvNorm() = default;
  ConvNorm(torch::nn::Conv2d conv, torch::nn::AnyModule norm);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Conv2d conv_{nullptr};
  torch::nn::AnyModule norm_;
  FrozenBatchNorm2dImpl* frozen_ = nullptr;  // norm_'s module when it is frozen BN
  torch::Tensor weight_, bias_;              // folded; undefined until first use
  std::array<int64_t, 5> versions_{};        // conv weight, then the norm's 4 buffers
  std::array<const void*, 5> storages_{};
};

}  // namespace focaldet::model
