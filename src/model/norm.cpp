#include "model/norm.h"

#include <ATen/ATen.h>
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

std::pair<torch::Tensor, torch::Tensor> FrozenBatchNorm2dImpl::scale_shift() const {
  // Same order of operations as torchvision, so results agree to the last bits.
  torch::Tensor scale = weight_ * (running_var_ + eps_).rsqrt();
  torch::Tensor shift = bias_ - running_mean_ * scale;
  return {std::move(scale), std::move(shift)};
}

torch::Tensor FrozenBatchNorm2dImpl::forward(const torch::Tensor& x) {
  const auto [scale, shift] = scale_shift();
  return x * scale.view({1, -1, 1, 1}) + shift.view({1, -1, 1, 1});
}

ConvNorm::ConvNorm(torch::nn::Conv2d conv, torch::nn::AnyModule norm)
    : conv_(std::move(conv)), norm_(std::move(norm)) {
  frozen_ = norm_.ptr()->as<FrozenBatchNorm2dImpl>();
  check(!conv_->options.bias(), "ConvNorm: the conv must have no bias (the norm adds one)");
}

torch::Tensor ConvNorm::forward(const torch::Tensor& x) {
  if (frozen_ == nullptr || at::GradMode::is_enabled()) return norm_.forward(conv_->forward(x));
  const std::array<torch::Tensor, 4> b = frozen_->buffers();
  const std::array<const torch::Tensor*, 5> sources = {&conv_->weight, &b[0], &b[1], &b[2], &b[3]};
  bool stale = !weight_.defined();
  for (size_t i = 0; i < sources.size(); ++i) {
    stale |= sources[i]->_version() != versions_[i] || sources[i]->data_ptr() != storages_[i];
  }
  if (stale) {
    const auto [scale, shift] = frozen_->scale_shift();
    weight_ = (conv_->weight * scale.view({-1, 1, 1, 1})).contiguous();
    bias_ = shift.contiguous();
    for (size_t i = 0; i < sources.size(); ++i) {
      versions_[i] = sources[i]->_version();
      storages_[i] = sources[i]->data_ptr();
    }
  }
  const auto& o = conv_->options;
  const auto& padding = c10::get<torch::ExpandingArray<2>>(o.padding());
  return at::conv2d(x, weight_, bias_, *o.stride(), *padding, *o.dilation(), o.groups());
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
