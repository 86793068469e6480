#include "model/norm.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/normalization.h>

#include <algorithm>

#include "common/error.h"
#include "model/winograd_conv.h"

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

ConvNorm::ConvNorm(torch::nn::Conv2d conv, torch::nn::AnyModule norm, bool winograd)
    : conv_(std::move(conv)), norm_(std::move(norm)) {
  const auto& o = conv_->options;
  const auto& padding = c10::get<torch::ExpandingArray<2>>(o.padding());
  const bool three_by_three = (*o.kernel_size())[0] == 3 && (*o.kernel_size())[1] == 3 &&
                              (*o.stride())[0] == 1 && (*o.stride())[1] == 1 &&
                              (*padding)[0] == 1 && (*padding)[1] == 1 && (*o.dilation())[0] == 1 &&
                              (*o.dilation())[1] == 1 && o.groups() == 1;
  winograd_ = winograd && three_by_three && winograd_training_available();
  if (norm_.is_empty()) return;
  frozen_ = norm_.ptr()->as<FrozenBatchNorm2dImpl>();
  check(!conv_->options.bias(), "ConvNorm: the conv must have no bias (the norm adds one)");
}

torch::Tensor ConvNorm::conv(const torch::Tensor& x, const torch::Tensor& weight,
                             const torch::Tensor& bias) const {
  if (winograd_ && x.scalar_type() == at::kFloat && x.device().is_cpu()) {
    return winograd_conv2d(x, weight, bias);
  }
  const auto& o = conv_->options;
  const auto& padding = c10::get<torch::ExpandingArray<2>>(o.padding());
  return at::conv2d(x, weight, bias, *o.stride(), *padding, *o.dilation(), o.groups());
}

void ConvNorm::refresh(bool blocked) {
  std::array<torch::Tensor, 6> sources = {conv_->weight, conv_->bias};
  if (frozen_ != nullptr) {
    const std::array<torch::Tensor, 4> b = frozen_->buffers();
    std::copy(b.begin(), b.end(), sources.begin() + 2);
  }
  bool stale = !weight_.defined() || blocked != blocked_;
  for (size_t i = 0; i < sources.size(); ++i) {
    if (!sources[i].defined()) continue;
    stale |= sources[i]._version() != versions_[i] || sources[i].data_ptr() != storages_[i];
  }
  if (!stale) return;
  torch::NoGradGuard no_grad;  // a cached weight carries no autograd history
  if (frozen_ != nullptr) {
    const auto [scale, shift] = frozen_->scale_shift();
    weight_ = (conv_->weight * scale.view({-1, 1, 1, 1})).contiguous();
    bias_ = shift.contiguous();
  } else {
    weight_ = conv_->weight.detach().contiguous();
    bias_ = conv_->bias.defined() ? conv_->bias.detach().contiguous() : torch::Tensor();
  }
  if (blocked) {
    const auto& o = conv_->options;
    const auto& padding = c10::get<torch::ExpandingArray<2>>(o.padding());
    weight_ = at::mkldnn_reorder_conv2d_weight(weight_.to_mkldnn(), *padding, *o.stride(),
                                               *o.dilation(), o.groups());
  }
  blocked_ = blocked;
  ++generation_;
  for (size_t i = 0; i < sources.size(); ++i) {
    versions_[i] = sources[i].defined() ? sources[i]._version() : 0;
    storages_[i] = sources[i].defined() ? sources[i].data_ptr() : nullptr;
  }
}

torch::Tensor ConvNorm::forward(const torch::Tensor& x) {
  const bool blocked = x.is_mkldnn();
  const bool grad = at::GradMode::is_enabled();
  if (blocked) {
    check(!grad && supports_mkldnn(),
          "ConvNorm: a blocked (mkldnn) input needs inference mode and no norm or a frozen BN");
  } else if (frozen_ == nullptr) {
    torch::Tensor y = winograd_ ? conv(x, conv_->weight, conv_->bias) : conv_->forward(x);
    return norm_.is_empty() ? y : norm_.forward(y);
  }
  const auto& o = conv_->options;
  const auto& padding = c10::get<torch::ExpandingArray<2>>(o.padding());
  if (grad && conv_->weight.requires_grad()) {
    // Training a conv before a frozen BN: the same fold, conv(x, w * scale, shift), with the
    // gradient reaching w through the product. It saves BN's two passes over the activation
    // forward and the multiply backward, and their memory.
    const auto [scale, shift] = frozen_->scale_shift();
    return conv(x, conv_->weight * scale.view({-1, 1, 1, 1}), shift);
  }
  if (blocked && winograd_ &&
      winograd_pays(x.size(0), x.size(1), conv_->weight.size(0), x.size(2), x.size(3), false)) {
    // Winograd on the dense map: its transformed weight is kept across passes.
    refresh(false);
    return winograd_inference_.forward(x.to_dense(), weight_, bias_, generation_).to_mkldnn();
  }
  refresh(blocked);
  if (blocked) {
    return at::mkldnn_convolution(x, weight_, bias_, *padding, *o.stride(), *o.dilation(),
                                  o.groups());
  }
  return conv(x, weight_, bias_);
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
