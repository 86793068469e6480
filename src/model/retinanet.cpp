#include "model/retinanet.h"

#include <ATen/ATen.h>

#include <string>

#include "common/error.h"

namespace focaldet::model {

RetinaNetImpl::RetinaNetImpl(const RetinaNetOptions& o) : options_(o) {
  check(o.trainable_layers >= 0 && o.trainable_layers <= 5,
        "retinanet: trainable_layers must be in [0, 5], got " + std::to_string(o.trainable_layers));
  auto backbone = register_module("backbone", std::make_shared<torch::nn::Module>());
  ResNetOptions body = o.backbone;
  body.winograd = o.head.winograd;
  body_ = backbone->register_module("body", ResNet(body));
  FpnOptions fpn;
  fpn.in_channels = body_->out_channels();
  fpn.out_channels = o.fpn_channels;
  fpn.p6_from = o.p6_from;
  fpn.winograd = o.head.winograd;
  fpn_ = backbone->register_module("fpn", Fpn(fpn));
  options_.head.in_channels = o.fpn_channels;
  head_ = register_module("head", RetinaNetHead(options_.head));

  // Freeze the lower backbone stages as torchvision's _resnet_fpn_extractor does.
  const std::vector<std::string> order = {"layer4", "layer3", "layer2", "layer1", "conv1"};
  std::vector<std::string> train(order.begin(), order.begin() + o.trainable_layers);
  if (o.trainable_layers == 5) train.push_back("bn1");
  for (auto& item : body_->named_parameters()) {
    bool trainable = false;
    for (const auto& prefix : train) trainable |= item.key().rfind(prefix, 0) == 0;
    if (!trainable) item.value().set_requires_grad(false);
  }
}

bool RetinaNetImpl::runs_blocked(const torch::Tensor& images) const {
  return options_.blocked_inference && !at::GradMode::is_enabled() && at::hasMKLDNN() &&
         images.device().is_cpu() && images.scalar_type() == at::kFloat &&
         images.layout() == at::kStrided &&
         options_.backbone.norm == NormKind::kFrozenBatchNorm && !options_.head.group_norm;
}

std::vector<torch::Tensor> RetinaNetImpl::features(const torch::Tensor& images) {
  if (!runs_blocked(images)) return fpn_->forward(body_->forward(images));
  std::vector<torch::Tensor> p = fpn_->forward(body_->forward(images.to_mkldnn()));
  for (auto& f : p) f = f.to_dense();
  return p;
}

RetinaNetOutput RetinaNetImpl::forward(const torch::Tensor& images) {
  const std::vector<torch::Tensor> p = runs_blocked(images)
                                           ? fpn_->forward(body_->forward(images.to_mkldnn()))
                                           : fpn_->forward(body_->forward(images));
  HeadOutput h = head_->forward(p);
  RetinaNetOutput out{std::move(h.cls_logits), std::move(h.box_deltas), {}};
  for (const auto& f : p) out.feature_sizes.emplace_back(f.size(2), f.size(3));
  return out;
}

}  // namespace focaldet::model
