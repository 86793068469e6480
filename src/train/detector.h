#pragma once
// The composed detector: one call for training (forward -> anchors -> assign -> classification
// + box loss -> breakdown), one for inference (forward -> post-process -> detections in the
// original image's pixels), as torchvision's RetinaNet.forward and detectron2's
// RetinaNet.losses. The parts stay where they are (model/, anchors/, assign/, loss/, infer/);
// this file only joins them.
#include <torch/nn/module.h>
#include <torch/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "anchors/anchor_generator.h"
#include "assign/atss.h"
#include "assign/max_iou.h"
#include "data/batch.h"
#include "infer/flip_views.h"
#include "infer/postprocess.h"
#include "loss/box_loss.h"
#include "loss/classification_loss.h"
#include "loss/loss_breakdown.h"
#include "loss/loss_normalizer.h"
#include "model/retinanet.h"

namespace focaldet::train {

enum class AssignerKind { MaxIoU, Atss };
enum class BoxLossKind { SmoothL1, L1, GIoU };
// How summed losses are normalised: by the batch's positives (the paper), by detectron2's
// moving average of them, or per image by its own positives and then averaged over the batch
// (torchvision's RetinaNet.compute_loss).
enum class NormalizeMode { NumPositives, Ema, PerImage };

struct DetectorOptions {
  model::RetinaNetOptions model;  // head.num_classes is C (the loss adds softmax's column)
  anchors::AnchorOptions anchors;
  AssignerKind assigner = AssignerKind::MaxIoU;
  assign::MaxIoUOptions max_iou;
  assign::AtssOptions atss;
  loss::ClsLossOptions cls;
  BoxLossKind box = BoxLossKind::L1;
  double smooth_l1_beta = 1.0 / 9.0;
  double box_weight = 1.0;
  NormalizeMode normalize = NormalizeMode::NumPositives;
  infer::PostprocessOptions postprocess;
  // Test-time flips (infer/flip_views.h): none | hflip | hvflip; detect() runs every view.
  std::string tta = "none";
};

// What the losses start from: the model's outputs for a batch, its anchors, and the assigner's
// verdict on every anchor of every image. losses() is built on it; the loss analysis
// (focaldet analyze-loss) reads the same per-anchor logits and targets.
struct AssignedOutputs {
  model::RetinaNetOutput out;  // cls_logits [B, A, K], box_deltas [B, A, 4]
  torch::Tensor anchors;       // [A, 4] input pixels, the same for every image of the batch
  std::vector<assign::AssignResult> assigned;  // B x (matched_gt, labels [A] int64)

  // [B, A] int64: class index, kBackground or kIgnore per anchor (the classification targets).
  torch::Tensor targets() const;
};

// One training step's losses. `total` = cls + box_weight * box, differentiable; the doubles are
// their values, and `breakdown` splits `cls` by kind of anchor (same scale).
struct TrainLosses {
  torch::Tensor total;
  double cls = 0;
  double box = 0;
  loss::LossBreakdown breakdown;
  int64_t num_pos = 0;  // positive anchors in the batch
};

class Detector {
 public:
  explicit Detector(const DetectorOptions& options);

  // Forward, assignment and losses for a training batch (its images, boxes, labels and crowd
  // regions as the loader gives them). The model is used in whatever train/eval mode it is in.
  // Data-parallel training passes `sum_over_ranks`, which turns this rank's count of positive
  // anchors into the count over all `ranks` ranks (an all-reduce): each rank's losses are
  // normalised by max(1, that count) / ranks, so that averaging the ranks' gradients gives the
  // gradient of the global batch (detectron2's num_pos_avg_per_gpu). Not used by the per-image
  // normaliser, which needs no other rank's numbers.
  TrainLosses losses(const data::Batch& batch,
                     const std::function<double(double)>& sum_over_ranks = {}, int ranks = 1);

  // Forward and assignment for a batch, without the losses: what losses() computes them from.
  // Under the caller's grad mode and the model's train/eval mode.
  AssignedOutputs forward_assigned(const data::Batch& batch);

  // Inference under no-grad: detections per image in original image pixels, on device() (flips
  // of the batch are not undone here: infer::to_coco_results does that). With options.tta, the
  // model also runs on mirrored copies of the batch and the views' detections are merged.
  std::vector<infer::Detections> detect(const data::Batch& batch);

  // Moves the model to `device` (run.device); losses(), forward_assigned() and detect() then
  // move each batch's images and targets there, so the anchors, the assignment and the losses
  // are computed there too. A new Detector is on the CPU. Call it before an optimizer takes the
  // parameters: Module::to keeps each parameter's identity, not an optimizer's state.
  void to(const torch::Device& device);
  const torch::Device& device() const { return device_; }

  model::RetinaNet& model() { return model_; }
  const DetectorOptions& options() const { return options_; }
  int64_t num_classes() const { return num_classes_; }
  // The EMA normaliser is training state (checkpoints save it).
  loss::LossNormalizer& normalizer() { return normalizer_; }

 private:
  DetectorOptions options_;
  int64_t num_classes_;
  model::RetinaNet model_{nullptr};
  anchors::AnchorGenerator anchor_generator_;
  std::vector<infer::FlipView> tta_views_;
  loss::LossNormalizer normalizer_;
  torch::Device device_ = torch::kCPU;
};

// "max_iou" | "atss", "smooth_l1" | "l1" | "giou", "num_pos" | "ema" | "per_image".
AssignerKind parse_assigner(const std::string& name);
BoxLossKind parse_box_loss(const std::string& name);
NormalizeMode parse_normalize_mode(const std::string& name);

}  // namespace focaldet::train
