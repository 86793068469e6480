#pragma once
// The detector of DESIGN.md: ResNet -> FPN P3..P7 -> shared RetinaNet head. Module tree and
// parameter names are torchvision's retinanet_resnet50_fpn (backbone.body.*, backbone.fpn.*,
// head.*), so its state dicts load by name (model/weight_import.h). Anchors and decoding live
// in anchors/ and infer/; this module only maps images to per-anchor outputs.
#include <torch/nn/module.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "model/fpn.h"
#include "model/resnet.h"
#include "model/retinanet_head.h"

namespace focaldet::model {

struct RetinaNetOptions {
  ResNetOptions backbone;            // depth 50, frozen BN
  P6Source p6_from = P6Source::kP5;  // torchvision: P5; the paper: C5
  int64_t fpn_channels = 256;
  HeadOptions head;  // in_channels is set to fpn_channels
  // Backbone stages trained, counted from the top as torchvision's trainable_backbone_layers:
  // 0 = none, 3 = layer2..layer4 (its default), 5 = everything including conv1 and bn1.
  int trainable_layers = 3;
  // Inference (no grad mode) in oneDNN's blocked layout from the image to the head's last convs,
  // with the weights reordered once: used when the backbone's norm is frozen BN, the head has
  // no GroupNorm and the input is a float CPU tensor; otherwise the dense path.
  bool blocked_inference = true;
};

struct RetinaNetOutput {
  torch::Tensor cls_logits;  // [B, A, C], A = sum over levels of H_l * W_l * anchors_per_location
  torch::Tensor box_deltas;  // [B, A, 4]
  std::vector<std::pair<int64_t, int64_t>> feature_sizes;  // (H_l, W_l) of P3..P7
};

class RetinaNetImpl : public torch::nn::Module {
 public:
  explicit RetinaNetImpl(const RetinaNetOptions& options = {});
  // images: [B, 3, H, W] normalised (data::Batch::images).
  RetinaNetOutput forward(const torch::Tensor& images);
  // P3..P7 (dense), for inspection and parity tests.
  std::vector<torch::Tensor> features(const torch::Tensor& images);
  // Whether forward(images) runs in the blocked layout (see blocked_inference).
  bool runs_blocked(const torch::Tensor& images) const;
  const RetinaNetOptions& options() const { return options_; }
  ResNet& body() { return body_; }
  Fpn& fpn() { return fpn_; }
  RetinaNetHead& head() { return head_; }

 private:
  RetinaNetOptions options_;
  ResNet body_{nullptr};
  Fpn fpn_{nullptr};
  RetinaNetHead head_{nullptr};
};
TORCH_MODULE(RetinaNet);

}  // namespace focaldet::model
