#include "model/fpn.h"

#include <ATen/ATen.h>
#include <torch/nn/init.h>
#include <torch/nn/modules/container/sequential.h>

#include "common/error.h"

namespace focaldet::model {
namespace {

// torchvision's FPN init: kaiming_uniform_(a=1), bias 0.
torch::nn::Conv2d fpn_conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t padding) {
  torch::nn::Conv2d c(torch::nn::Conv2dOptions(in, out, k).stride(stride).padding(padding));
  torch::nn::init::kaiming_uniform_(c->weight, /*a=*/1);
  torch::nn::init::zeros_(c->bias);
  return c;
}

}  // namespace

FpnImpl::FpnImpl(const FpnOptions& o) : options_(o) {
  check(o.in_channels.size() == 3, "fpn: expected the channels of C3, C4, C5, got " +
                                       std::to_string(o.in_channels.size()) + " values");
  inner_blocks_ = register_module("inner_blocks", torch::nn::ModuleList());
  layer_blocks_ = register_module("layer_blocks", torch::nn::ModuleList());
  for (int64_t in : o.in_channels) {
    // A one-conv Sequential, as torchvision's Conv2dNormActivation: names "inner_blocks.i.0".
    torch::nn::Conv2d inner = fpn_conv(in, o.out_channels, 1, 1, 0);
    torch::nn::Conv2d layer = fpn_conv(o.out_channels, o.out_channels, 3, 1, 1);
    inner_blocks_->push_back(torch::nn::Sequential(inner));
    layer_blocks_->push_back(torch::nn::Sequential(layer));
    inner_.emplace_back(inner);
    layer_.emplace_back(layer, torch::nn::AnyModule(), o.winograd);
  }
  auto extra = register_module("extra_blocks", std::make_shared<torch::nn::Module>());
  const int64_t p6_in = o.p6_from == P6Source::kP5 ? o.out_channels : o.in_channels.back();
  p6_ = extra->register_module("p6", fpn_conv(p6_in, o.out_channels, 3, 2, 1));
  p7_ = extra->register_module("p7", fpn_conv(o.out_channels, o.out_channels, 3, 2, 1));
  p6_run_ = ConvNorm(p6_);
  p7_run_ = ConvNorm(p7_);
}

std::vector<torch::Tensor> FpnImpl::forward(const std::vector<torch::Tensor>& c) {
  check(c.size() == 3, "fpn: expected C3, C4, C5, got " + std::to_string(c.size()) + " maps");
  // The top-down path: upsample(last) + lateral. oneDNN has no nearest upsampling, so a blocked
  // (mkldnn) map takes a dense round trip; these are the small C4/C5-sized maps.
  auto upsampled = [](const torch::Tensor& last, const torch::Tensor& like) {
    const std::vector<int64_t> size = {like.size(2), like.size(3)};
    if (!last.is_mkldnn()) return at::upsample_nearest2d(last, size);
    return at::upsample_nearest2d(last.to_dense(), size).to_mkldnn();
  };
  std::vector<torch::Tensor> p(3);
  torch::Tensor last = inner_[2].forward(c[2]);
  p[2] = layer_[2].forward(last);
  for (int i = 1; i >= 0; --i) {
    const torch::Tensor lateral = inner_[i].forward(c[i]);
    last = lateral + upsampled(last, lateral);
    p[i] = layer_[i].forward(last);
  }
  const torch::Tensor p6 = p6_run_.forward(options_.p6_from == P6Source::kP5 ? p[2] : c[2]);
  p.push_back(p6);
  p.push_back(p7_run_.forward(at::relu(p6)));
  return p;
}

}  // namespace focaldet::model
