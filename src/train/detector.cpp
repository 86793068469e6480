#include "train/detector.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <algorithm>

#include "anchors/box_coder.h"
#include "common/error.h"
#include "infer/flip_views.h"

namespace focaldet::train {
namespace {

// What one image contributes to the box loss: its positive anchors' predictions and targets.
struct PositiveRows {
  at::Tensor pred_deltas;  // [P, 4]
  at::Tensor anchors;      // [P, 4]
  at::Tensor gt_boxes;     // [P, 4] the matched gt box of each
};

at::Tensor box_loss_sum(const DetectorOptions& o, const PositiveRows& p) {
  switch (o.box) {
    case BoxLossKind::L1:
      return loss::l1_box_loss(p.pred_deltas, anchors::encode_boxes(p.gt_boxes, p.anchors),
                               loss::Reduction::Sum);
    case BoxLossKind::SmoothL1: {
      loss::SmoothL1Options s;
      s.beta = o.smooth_l1_beta;
      return loss::smooth_l1_box_loss(p.pred_deltas,
                                      anchors::encode_boxes(p.gt_boxes, p.anchors), s);
    }
    case BoxLossKind::GIoU:
      return loss::giou_loss(anchors::decode_boxes(p.pred_deltas, p.anchors), p.gt_boxes,
                             loss::Reduction::Sum);
  }
  throw Error("detector: unknown box loss");
}

void add_scaled(loss::LossBreakdown& into, const loss::LossBreakdown& b, double factor) {
  into.loss_pos += b.loss_pos * factor;
  into.loss_neg_hard += b.loss_neg_hard * factor;
  into.loss_neg_easy += b.loss_neg_easy * factor;
  into.num_pos += b.num_pos;
  into.num_neg_hard += b.num_neg_hard;
  into.num_neg_easy += b.num_neg_easy;
  into.num_ignored += b.num_ignored;
}

// The batch's tensors on `device`; `batch` itself when they are there (the CPU: no copy).
const data::Batch& on_device(const data::Batch& batch, const torch::Device& device,
                             data::Batch& moved) {
  if (batch.images.device() == device) return batch;
  moved = batch;
  moved.images = batch.images.to(device);
  for (auto* tensors : {&moved.boxes, &moved.labels, &moved.crowd_boxes}) {
    for (at::Tensor& t : *tensors) {
      if (t.defined()) t = t.to(device);
    }
  }
  return moved;
}

PositiveRows cat_rows(const std::vector<PositiveRows>& rows) {
  std::vector<at::Tensor> d, a, g;
  for (const auto& r : rows) {
    d.push_back(r.pred_deltas);
    a.push_back(r.anchors);
    g.push_back(r.gt_boxes);
  }
  return {at::cat(d), at::cat(a), at::cat(g)};
}

}  // namespace

AssignerKind parse_assigner(const std::string& name) {
  if (name == "max_iou") return AssignerKind::MaxIoU;
  if (name == "atss") return AssignerKind::Atss;
  throw Error("unknown assigner '" + name + "' (expected max_iou or atss)");
}

BoxLossKind parse_box_loss(const std::string& name) {
  if (name == "smooth_l1") return BoxLossKind::SmoothL1;
  if (name == "l1") return BoxLossKind::L1;
  if (name == "giou") return BoxLossKind::GIoU;
  throw Error("unknown box loss '" + name + "' (expected smooth_l1, l1 or giou)");
}

NormalizeMode parse_normalize_mode(const std::string& name) {
  if (name == "num_pos") return NormalizeMode::NumPositives;
  if (name == "ema") return NormalizeMode::Ema;
  if (name == "per_image") return NormalizeMode::PerImage;
  throw Error("unknown loss normalizer '" + name + "' (expected num_pos, ema or per_image)");
}

Detector::Detector(const DetectorOptions& options)
    : options_(options),
      num_classes_(options.model.head.num_classes),
      anchor_generator_(options.anchors),
      normalizer_(options.normalize == NormalizeMode::Ema ? loss::NormalizerKind::Ema
                                                          : loss::NormalizerKind::NumPositives) {
  check(num_classes_ >= 1, "detector: num_classes must be >= 1");
  model::RetinaNetOptions m = options.model;
  m.head.num_classes = loss::logits_per_anchor(options.cls.kind, num_classes_);
  m.head.num_anchors = anchor_generator_.anchors_per_location();
  check(anchor_generator_.num_levels() == 5,
        "detector: anchors need one base size per level P3..P7 (5), got " +
            std::to_string(anchor_generator_.num_levels()));
  options_.model = m;
  options_.postprocess.softmax_background = options.cls.kind == loss::ClsLossKind::SoftmaxFocal;
  tta_views_ = infer::flip_views(options.tta);
  model_ = model::RetinaNet(m);
}

void Detector::to(const torch::Device& device) {
  if (device == device_) return;  // a new detector on the CPU stays untouched
  model_->to(device);
  device_ = device;
}

at::Tensor AssignedOutputs::targets() const {
  std::vector<at::Tensor> labels;
  labels.reserve(assigned.size());
  for (const auto& r : assigned) labels.push_back(r.labels);
  return at::stack(labels);
}

AssignedOutputs Detector::forward_assigned(const data::Batch& batch_in) {
  data::Batch moved;
  const data::Batch& batch = on_device(batch_in, device_, moved);
  const int64_t images = batch.size();
  check(images > 0, "detector: empty batch");
  AssignedOutputs result;
  result.out = model_->forward(batch.images);
  const std::vector<anchors::Size2> feature_sizes(result.out.feature_sizes.begin(),
                                                  result.out.feature_sizes.end());
  result.anchors = anchor_generator_.anchors({batch.images.size(2), batch.images.size(3)},
                                             feature_sizes, batch.images.device());
  const std::vector<int64_t> per_level = anchor_generator_.num_anchors_per_level(feature_sizes);
  result.assigned.reserve(images);
  for (int64_t i = 0; i < images; ++i) {
    assign::GroundTruth gt;
    gt.boxes = batch.boxes[i];
    gt.labels = batch.labels[i];
    gt.crowd_boxes = batch.crowd_boxes[i];
    result.assigned.push_back(
        options_.assigner == AssignerKind::MaxIoU
            ? assign::assign_max_iou(result.anchors, gt, options_.max_iou)
            : assign::assign_atss(result.anchors, per_level, gt, options_.atss));
  }
  return result;
}

TrainLosses Detector::losses(const data::Batch& batch_in,
                             const std::function<double(double)>& sum_over_ranks, int ranks) {
  data::Batch moved;
  const data::Batch& batch = on_device(batch_in, device_, moved);
  const AssignedOutputs a = forward_assigned(batch);
  const model::RetinaNetOutput& out = a.out;
  const int64_t images = batch.size();
  std::vector<PositiveRows> positives(images);
  std::vector<int64_t> num_pos(images);
  for (int64_t i = 0; i < images; ++i) {
    const assign::AssignResult& r = a.assigned[i];
    const at::Tensor pos = at::nonzero(r.matched_gt >= 0).view(-1);
    num_pos[i] = pos.size(0);
    positives[i] = {out.box_deltas[i].index_select(0, pos), a.anchors.index_select(0, pos),
                    batch.boxes[i].index_select(0, r.matched_gt.index_select(0, pos))};
  }

  TrainLosses result;
  for (int64_t n : num_pos) result.num_pos += n;
  at::Tensor cls, box;
  if (options_.normalize == NormalizeMode::PerImage) {
    // torchvision: each image's sums over max(1, its positives), then the mean over images.
    std::vector<at::Tensor> cls_terms, box_terms;
    for (int64_t i = 0; i < images; ++i) {
      const double norm = std::max<int64_t>(1, num_pos[i]);
      loss::LossBreakdown b;
      cls_terms.push_back(loss::classification_loss(out.cls_logits.slice(0, i, i + 1),
                                                    a.assigned[i].labels.unsqueeze(0), options_.cls,
                                                    norm, &b));
      box_terms.push_back(box_loss_sum(options_, positives[i]) / norm);
      add_scaled(result.breakdown, b, 1.0 / images);
    }
    cls = at::stack(cls_terms).sum() / images;
    box = at::stack(box_terms).sum() / images;
  } else {
    const auto num_pos = static_cast<double>(result.num_pos);
    const double norm = sum_over_ranks ? normalizer_.update(sum_over_ranks(num_pos), ranks)
                                       : normalizer_.update(num_pos);
    cls = loss::classification_loss(out.cls_logits, a.targets(), options_.cls, norm,
                                    &result.breakdown);
    box = box_loss_sum(options_, cat_rows(positives)) / norm;
  }
  result.total = cls + options_.box_weight * box;
  result.cls = cls.item<double>();
  result.box = box.item<double>();
  return result;
}

std::vector<infer::Detections> Detector::detect(const data::Batch& batch_in) {
  torch::NoGradGuard no_grad;
  data::Batch moved;
  const data::Batch& batch = on_device(batch_in, device_, moved);
  std::vector<infer::ImageInfo> infos;
  std::vector<anchors::Size2> sizes;
  for (int64_t i = 0; i < batch.size(); ++i) {
    sizes.emplace_back(batch.image_sizes[i][0], batch.image_sizes[i][1]);
    infos.push_back({sizes.back(), batch.scales[i]});
  }
  // One pass per view; with test-time flips, each view's detections mirrored back and merged.
  std::vector<std::vector<infer::Detections>> per_image(batch.size());
  for (const infer::FlipView& view : tta_views_) {
    const at::Tensor images = infer::flip_images(batch.images, sizes, view);
    const model::RetinaNetOutput out = model_->forward(images);
    const std::vector<anchors::Size2> feature_sizes(out.feature_sizes.begin(),
                                                    out.feature_sizes.end());
    const at::Tensor anchors = anchor_generator_.anchors({images.size(2), images.size(3)},
                                                         feature_sizes, images.device());
    std::vector<infer::Detections> dets = infer::postprocess(
        out.cls_logits, out.box_deltas, anchors,
        anchor_generator_.num_anchors_per_level(feature_sizes), infos, options_.postprocess);
    if (tta_views_.size() == 1) return dets;
    for (int64_t i = 0; i < batch.size(); ++i) {
      per_image[i].push_back(infer::unflip(dets[i], infos[i], view));
    }
  }
  std::vector<infer::Detections> merged;
  for (const auto& views : per_image) {
    merged.push_back(infer::merge_views(views, options_.postprocess.nms_thresh,
                                        options_.postprocess.max_detections));
  }
  return merged;
}

}  // namespace focaldet::train
