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

#include "model/winograd_conv.h"

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

// norm(conv(x)) for a conv followed by a norm layer, both registered by their owner, or conv(x)
// alone when `norm` is empty (the FPN's and the head's convs, with their own bias).
// A FrozenBatchNorm2d is folded into the conv: conv(x, w * scale, shift), one pass over the
// output instead of three (conv, mul, add); in training the gradient reaches w through w * scale.
// An input in oneDNN's blocked layout (x.is_mkldnn(), inference only: see RetinaNetImpl) runs
// oneDNN's convolution on a weight reordered once into its blocked layout, and the output stays
// blocked, so consecutive convs pay no layout conversion; a Winograd conv takes a dense round
// trip there, its weight transformed once per input shape. The folded or reordered weight and
// bias are cached and rebuilt when a source tensor changes (its version counter or storage:
// load_weights and optimizer steps bump the version); a trained weight is scaled afresh at every
// call. Other norms run conv then norm. Results differ from conv-then-norm by float rounding
// only (the products are summed in another order).
class ConvNorm {
 public:
  ConvNorm() = default;
  // `winograd`: a dense 3x3, stride 1, padding 1 conv runs on oneDNN's Winograd algorithm
  // (model/winograd_conv.h) where it is available, before any norm or none.
  explicit ConvNorm(torch::nn::Conv2d conv, torch::nn::AnyModule norm = {}, bool winograd = false);
  torch::Tensor forward(const torch::Tensor& x);
  // Whether forward() accepts a blocked (mkldnn) input: no norm, or a frozen BN.
  bool supports_mkldnn() const { return norm_.is_empty() || frozen_ != nullptr; }

 private:
  // The weight and bias conv(x) uses without grad mode (folded when the norm is frozen BN),
  // rebuilt when stale; `blocked` also reorders the weight to oneDNN's layout.
  void refresh(bool blocked);
  // conv(x, weight, bias) with the conv's geometry, on Winograd when winograd_.
  torch::Tensor conv(const torch::Tensor& x, const torch::Tensor& weight,
                     const torch::Tensor& bias) const;

  torch::nn::Conv2d conv_{nullptr};
  torch::nn::AnyModule norm_;
  FrozenBatchNorm2dImpl* frozen_ = nullptr;  // norm_'s module when it is frozen BN
  torch::Tensor weight_, bias_;              // undefined until first use
  bool blocked_ = false;                     // weight_ is in oneDNN's blocked layout
  bool winograd_ = false;
  WinogradInference winograd_inference_;  // blocked inference of a Winograd conv
  uint64_t generation_ = 0;               // bumped whenever weight_ and bias_ are rebuilt
  std::array<int64_t, 6> versions_{};        // conv weight, conv bias, the norm's 4 buffers
  std::array<const void*, 6> storages_{};
};

}  // namespace focaldet::model
