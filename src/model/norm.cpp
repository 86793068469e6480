#include "model/norm.h"

#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/normalization.h>

#include "common/error.h"

namespace focaldet::model {

NormKind parse_norm_kind(const std::string& name) {
  if (name == "bn") return NormKind::kBatchNorm;
  if (name == "frozen_bn") return NormKind::kFrozenBatchNorm;
  if (name == "gn") return NormKind::kGroupNorm;
  throw Error("unknown norm '" + name + "' (expected bn, frozen_bn or gn)");
}

FrozenBatchNorm2dImpl::FrozenBatchNorm2dImpl(int64_t channels, double eps) : eps_(eps) {
  weight_ = register_buffer("weight", torch::ones({channels}));
  bias_ = register_buffer("bias", torch::zeros({channels}));
  running_mean_ = register_buffer("running_mean", torch::zeros({channels}));
  running_var_ = register_buffer("running_var", torch::ones({channels}));
}

torch::Tensor FrozenBatchNorm2dImpl::forward(const torch::Tensor& x) {
  // Same order of operations as torchvision, so results agree to the last bits.
  const torch::Tensor scale = weight_ * (running_var_ + eps_).rsqrt();
  const torch::Tensor shift = bias_ - running_mean_ * scale;
  return x * scale.view({1, -1, 1, 1}) + shift.view({1, -1, 1, 1});
}

torch::nn::AnyModule make_norm(NormKind kind, int64_t channels, int64_t groups) {
  switch (kind) {
    case NormKind::kBatchNorm:
      return torch::nn::AnyModule(torch::nn::BatchNorm2d(channels));
    case NormKind::kFrozenBatchNorm:
      return torch::nn::AnyModule(FrozenBatchNorm2d(channels));
    case NormKind::kGroupNorm:
      check(groups > 0, "GroupNorm: groups must be > 0, got " + std::to_string(groups));
      check(channels % groups == 0, "GroupNorm: " + std::to_string(channels) +
                                        " channels are not divisible into " +
                                        std::to_string(groups) + " groups");
      return torch::nn::AnyModule(torch::nn::GroupNorm(groups, channels));
  }
  throw Error("make_norm: unknown NormKind");
}

}  // namespace focaldet::model
