#include "model/retinanet_head.h"

#include <ATen/ATen.h>
#include <torch/nn/init.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/normalization.h>

#include <cmath>

#include "common/error.h"
#include "model/winograd_conv.h"

namespace focaldet::model {
namespace {

torch::nn::Conv2d head_conv(int64_t in, int64_t out, bool bias) {
  torch::nn::Conv2d c(torch::nn::Conv2dOptions(in, out, 3).stride(1).padding(1).bias(bias));
  torch::nn::init::normal_(c->weight, 0.0, 0.01);
  if (bias) torch::nn::init::zeros_(c->bias);
  return c;
}

// N blocks "i" = Sequential(conv "0", [GroupNorm "1"], ReLU), as torchvision's
// Conv2dNormActivation, so the names are conv.i.0.weight, conv.i.1.weight. `runners` gets a
// runner per conv for blocked inputs (none with GroupNorm, which runs dense only).
torch::nn::ModuleList tower(const HeadOptions& o, std::vector<ConvNorm>* runners,
                            std::vector<torch::nn::Conv2d>* convs,
                            std::vector<torch::nn::GroupNorm>* norms) {
  torch::nn::ModuleList seq;
  for (int64_t i = 0; i < o.num_convs; ++i) {
    torch::nn::Sequential block;
    torch::nn::Conv2d conv =
        head_conv(i == 0 ? o.in_channels : o.channels, o.channels, !o.group_norm);
    if (!o.group_norm) runners->emplace_back(conv);
    convs->push_back(conv);
    block->push_back(conv);
    if (o.group_norm) {
      norms->push_back(torch::nn::GroupNorm(o.gn_groups, o.channels));
      block->push_back(norms->back());
    }
    block->push_back(torch::nn::ReLU(torch::nn::ReLUOptions().inplace(true)));
    seq->push_back(block);
  }
  return seq;
}

torch::Tensor run_tower(const torch::nn::ModuleList& tower, torch::Tensor x) {
  for (const auto& block : *tower) x = block->as<torch::nn::Sequential>()->forward(x);
  return x;
}

// A tower on a blocked (mkldnn) map: conv, then ReLU in place, per block; no GroupNorm.
torch::Tensor run_tower_blocked(std::vector<ConvNorm>& convs, torch::Tensor x) {
  for (ConvNorm& c : convs) x = c.forward(x).relu_();
  return x;
}

// [B, A*K, H, W] -> [B, H*W*A, K], the anchor generator's order.
torch::Tensor to_rows(const torch::Tensor& x, int64_t k) {
  const int64_t b = x.size(0), h = x.size(2), w = x.size(3);
  return x.view({b, -1, k, h, w}).permute({0, 3, 4, 1, 2}).reshape({b, -1, k});
}

// The levels' outputs in the head's row order, concatenated: [B, rows, K]. A part is a map
// [B, A*K, H, W] (permuted into its rows) or rows [B, H*W*A, K] already. Without grad mode each
// part is written once, straight into its place in the result, instead of a permuted copy and
// then a second copy by at::cat.
torch::Tensor concat_rows(const std::vector<torch::Tensor>& parts, int64_t k) {
  if (at::GradMode::is_enabled()) {
    std::vector<torch::Tensor> rows;
    for (const torch::Tensor& p : parts) rows.push_back(p.dim() == 4 ? to_rows(p, k) : p);
    return at::cat(rows, 1);
  }
  int64_t total = 0;
  for (const torch::Tensor& p : parts) total += p.dim() == 4 ? p.numel() / p.size(0) / k : p.size(1);
  const torch::Tensor& first = parts.front();
  torch::Tensor out = at::empty({first.size(0), total, k}, first.options());
  int64_t row = 0;
  for (const torch::Tensor& p : parts) {
    if (p.dim() == 4) {
      const int64_t b = p.size(0), a = p.size(1) / k, h = p.size(2), w = p.size(3);
      out.narrow(1, row, h * w * a)
          .view({b, h, w, a, k})
          .copy_(p.view({b, a, k, h, w}).permute({0, 3, 4, 1, 2}));
      row += h * w * a;
    } else {
      out.narrow(1, row, p.size(1)).copy_(p);
      row += p.size(1);
    }
  }
  return out;
}

}  // namespace

RetinaNetHeadImpl::RetinaNetHeadImpl(const HeadOptions& o) : options_(o) {
  check(o.num_convs >= 0 && o.channels > 0 && o.num_anchors > 0 && o.num_classes > 0,
        "head: num_convs >= 0, channels, num_anchors and num_classes > 0 required");
  check(o.prior > 0 && o.prior < 1,
        "head: prior must be in (0, 1), got " + std::to_string(o.prior));
  check(!o.group_norm || o.gn_groups > 0,
        "head: gn_groups must be > 0, got " + std::to_string(o.gn_groups));
  check(!o.group_norm || o.channels % o.gn_groups == 0,
        "head: " + std::to_string(o.channels) + " channels are not divisible into " +
            std::to_string(o.gn_groups) + " GroupNorm groups");
  const int64_t last = o.num_convs > 0 ? o.channels : o.in_channels;
  auto cls = register_module("classification_head", std::make_shared<torch::nn::Module>());
  std::vector<torch::nn::Conv2d>& cls_convs = cls_tower_convs_;
  std::vector<torch::nn::Conv2d>& box_convs = box_tower_convs_;
  cls_tower_ = cls->register_module("conv", tower(o, &cls_convs_, &cls_convs, &cls_tower_norms_));
  cls_logits_ =
      cls->register_module("cls_logits", head_conv(last, o.num_anchors * o.num_classes, true));
  torch::nn::init::constant_(cls_logits_->bias, -std::log((1 - o.prior) / o.prior));
  auto box = register_module("regression_head", std::make_shared<torch::nn::Module>());
  box_tower_ = box->register_module("conv", tower(o, &box_convs_, &box_convs, &box_tower_norms_));
  bbox_reg_ = box->register_module("bbox_reg", head_conv(last, o.num_anchors * 4, true));
  cls_logits_run_ = ConvNorm(cls_logits_);
  bbox_reg_run_ = ConvNorm(bbox_reg_);
  if (o.winograd && !o.group_norm && WinogradHead::available()) {
    winograd_ = WinogradHead(cls_convs, cls_logits_, box_convs, bbox_reg_);
  }
  winograd_training_ = o.winograd && winograd_training_available();
  cls_inference_.resize(static_cast<size_t>(o.num_convs) + 1);
  box_inference_.resize(static_cast<size_t>(o.num_convs) + 1);
}

HeadOutput RetinaNetHeadImpl::forward(const std::vector<torch::Tensor>& features) {
  std::vector<torch::Tensor> cls, box;
  for (const torch::Tensor& f : features) {
    check(f.dim() == 4 && f.size(1) == options_.in_channels,
          "head: feature maps must be [B, " + std::to_string(options_.in_channels) +
              ", H, W], got " + c10::str(f.sizes()));
    if (f.is_mkldnn() && winograd_.defined()) {
      auto [c, b] = winograd_.forward(f.to_dense(), options_.num_classes);
      cls.push_back(std::move(c));
      box.push_back(std::move(b));
      continue;
    }
    // A Winograd tower on the dense map: in training, and in inference where the head has no
    // oneDNN Winograd (a blocked map pays a round trip when the GEMM path takes its shape).
    const bool winograd =
        winograd_training_ && f.scalar_type() == at::kFloat && f.device().is_cpu() &&
        (!f.is_mkldnn() ||
         winograd_pays(f.size(0), f.size(1), f.size(1), f.size(2), f.size(3), false));
    if (f.is_mkldnn() && !winograd) {
      check(!options_.group_norm, "head: a blocked (mkldnn) input needs a head without GroupNorm");
      const torch::Tensor c = run_tower_blocked(cls_convs_, f);
      const torch::Tensor b = run_tower_blocked(box_convs_, f);
      cls.push_back(cls_logits_run_.forward(c).to_dense());
      box.push_back(bbox_reg_run_.forward(b).to_dense());
      continue;
    }
    if (winograd) {
      const bool inference = !at::GradMode::is_enabled();
      auto run = [inference](const std::vector<torch::nn::Conv2d>& tower,
                             std::vector<torch::nn::GroupNorm>& norms,
                             const torch::nn::Conv2d& out,
                             std::vector<WinogradInference>& cached, torch::Tensor x) {
        // No bias before GroupNorm (undefined). Inference without GroupNorm fuses the ReLU.
        const bool fuse_relu = inference && norms.empty();
        for (size_t i = 0; i < tower.size(); ++i) {
          const torch::nn::Conv2d& c = tower[i];
          x = inference ? cached[i].forward_tracked(x, c->weight, c->bias, fuse_relu)
                        : winograd_conv2d(x, c->weight, c->bias);
          if (!norms.empty()) x = norms[i]->forward(x);
          if (!fuse_relu) x = x.relu_();
        }
        return inference ? cached[tower.size()].forward_tracked(x, out->weight, out->bias, false)
                         : winograd_conv2d(x, out->weight, out->bias);
      };
      const torch::Tensor dense = f.is_mkldnn() ? f.to_dense() : f;
      cls.push_back(run(cls_tower_convs_, cls_tower_norms_, cls_logits_, cls_inference_, dense));
      box.push_back(run(box_tower_convs_, box_tower_norms_, bbox_reg_, box_inference_, dense));
      continue;
    }
    const torch::Tensor c = run_tower(cls_tower_, f);
    const torch::Tensor b = run_tower(box_tower_, f);
    cls.push_back(cls_logits_->forward(c));
    box.push_back(bbox_reg_->forward(b));
  }
  // Maps [B, A*K, H, W], or rows from the oneDNN Winograd head, into rows.
  return {concat_rows(cls, options_.num_classes), concat_rows(box, 4)};
}

}  // namespace focaldet::model
