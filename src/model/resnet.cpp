#include "model/resnet.h"

#include <ATen/ATen.h>
#include <torch/nn/init.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/normalization.h>

#include <string>

#include "common/error.h"

namespace focaldet::model {
namespace {

// relu(y + shortcut), the end of every block. Without grad mode (inference) y, the block's own
// conv output, is added to in place: no third activation-sized buffer per block.
torch::Tensor add_shortcut(torch::Tensor& y, const torch::Tensor& shortcut) {
  return (at::GradMode::is_enabled() ? y + shortcut : y.add_(shortcut)).relu_();
}

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t padding) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, k).stride(stride).padding(padding).bias(false));
}

// 1x1 conv + norm on the shortcut when the shape changes ("downsample.0", "downsample.1"):
// registered as a Sequential for the parameter names, run through `*run`.
torch::nn::Sequential downsample(int64_t in, int64_t out, int64_t stride, const ResNetOptions& o,
                                 ConvNorm* run) {
  torch::nn::Sequential seq;
  torch::nn::Conv2d c = conv(in, out, 1, stride, 0);
  torch::nn::AnyModule n = make_norm(o.norm, out, o.gn_groups);
  seq->push_back(c);
  seq->push_back(n);
  *run = ConvNorm(c, n, o.winograd);
  return seq;
}

// Registers conv<k> and bn<k> (torchvision's names) on `owner` and returns their runner.
ConvNorm conv_norm(torch::nn::Module* owner, const std::string& k, torch::nn::Conv2d c,
                   int64_t channels, const ResNetOptions& o) {
  owner->register_module("conv" + k, c);
  torch::nn::AnyModule n = make_norm(o.norm, channels, o.gn_groups);
  owner->register_module("bn" + k, n.ptr());
  return ConvNorm(c, n, o.winograd);
}

// ReLUs are in place, as torchvision's (nn.ReLU(inplace=True)): one allocation less per
// activation, and none of the layers before them needs its output for the backward pass.

// Two 3x3 convs (ResNet-18/34).
class BasicBlockImpl : public torch::nn::Module {
 public:
  static constexpr int64_t kExpansion = 1;
  BasicBlockImpl(int64_t in, int64_t planes, int64_t stride, const ResNetOptions& o) {
    cn1_ = conv_norm(this, "1", conv(in, planes, 3, stride, 1), planes, o);
    cn2_ = conv_norm(this, "2", conv(planes, planes, 3, 1, 1), planes, o);
    if (stride != 1 || in != planes) {
      downsample_ = register_module("downsample", downsample(in, planes, stride, o, &shortcut_));
    }
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor y = cn1_.forward(x).relu_();
    y = cn2_.forward(y);
    return add_shortcut(y, downsample_ ? shortcut_.forward(x) : x);
  }

 private:
  ConvNorm cn1_, cn2_, shortcut_;
  torch::nn::Sequential downsample_{nullptr};
};
TORCH_MODULE(BasicBlock);

// 1x1 -> 3x3 (stride) -> 1x1 x4 (ResNet-50).
class BottleneckImpl : public torch::nn::Module {
 public:
  static constexpr int64_t kExpansion = 4;
  BottleneckImpl(int64_t in, int64_t planes, int64_t stride, const ResNetOptions& o) {
    cn1_ = conv_norm(this, "1", conv(in, planes, 1, 1, 0), planes, o);
    cn2_ = conv_norm(this, "2", conv(planes, planes, 3, stride, 1), planes, o);
    cn3_ = conv_norm(this, "3", conv(planes, planes * kExpansion, 1, 1, 0), planes * kExpansion, o);
    if (stride != 1 || in != planes * kExpansion) {
      downsample_ =
          register_module("downsample", downsample(in, planes * kExpansion, stride, o, &shortcut_));
    }
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor y = cn1_.forward(x).relu_();
    y = cn2_.forward(y).relu_();
    y = cn3_.forward(y);
    return add_shortcut(y, downsample_ ? shortcut_.forward(x) : x);
  }

 private:
  ConvNorm cn1_, cn2_, cn3_, shortcut_;
  torch::nn::Sequential downsample_{nullptr};
};
TORCH_MODULE(Bottleneck);

template <typename Block>
torch::nn::Sequential make_layer(int64_t* in, int64_t planes, int blocks, int64_t stride,
                                 const ResNetOptions& o) {
  torch::nn::Sequential seq;
  seq->push_back(Block(*in, planes, stride, o));
  *in = planes * Block::Impl::kExpansion;
  for (int i = 1; i < blocks; ++i) seq->push_back(Block(*in, planes, 1, o));
  return seq;
}

}  // namespace

ResNetImpl::ResNetImpl(const ResNetOptions& o) : depth_(o.depth), width_(o.width) {
  std::vector<int> blocks;
  if (o.depth == 18)
    blocks = {2, 2, 2, 2};
  else if (o.depth == 34 || o.depth == 50)
    blocks = {3, 4, 6, 3};
  else
    throw Error("resnet: depth must be 18, 34 or 50, got " + std::to_string(o.depth));
  if (o.width < 1) throw Error("resnet: width must be >= 1, got " + std::to_string(o.width));

  const int64_t w = o.width;
  stem_ = conv_norm(this, "1", conv(3, w, 7, 2, 3), w, o);
  int64_t in = w;
  const bool bottleneck = o.depth == 50;
  auto layer = [&](int64_t planes, int n, int64_t stride) {
    return bottleneck ? make_layer<Bottleneck>(&in, planes, n, stride, o)
                      : make_layer<BasicBlock>(&in, planes, n, stride, o);
  };
  layer1_ = register_module("layer1", layer(w, blocks[0], 1));
  layer2_ = register_module("layer2", layer(2 * w, blocks[1], 2));
  layer3_ = register_module("layer3", layer(4 * w, blocks[2], 2));
  layer4_ = register_module("layer4", layer(8 * w, blocks[3], 2));

  // torchvision's init: He normal (fan_out) for convs, norms at weight 1, bias 0.
  for (auto& m : modules(/*include_self=*/false)) {
    if (auto* c = m->as<torch::nn::Conv2d>()) {
      torch::nn::init::kaiming_normal_(c->weight, 0, torch::kFanOut, torch::kReLU);
    }
  }
}

std::vector<int64_t> ResNetImpl::out_channels() const {
  const int64_t expansion = depth_ == 50 ? 4 : 1;
  return {2 * width_ * expansion, 4 * width_ * expansion, 8 * width_ * expansion};
}

std::vector<torch::Tensor> ResNetImpl::forward(const torch::Tensor& x) {
  check(x.dim() == 4 && x.size(1) == 3,
        "resnet: input must be [B, 3, H, W], got " + c10::str(x.sizes()));
  torch::Tensor y = stem_.forward(x).relu_();
  y = at::max_pool2d(y, {3, 3}, {2, 2}, {1, 1});
  y = layer1_->forward(y);
  torch::Tensor c3 = layer2_->forward(y);
  torch::Tensor c4 = layer3_->forward(c3);
  torch::Tensor c5 = layer4_->forward(c4);
  return {c3, c4, c5};
}

}  // namespace focaldet::model
