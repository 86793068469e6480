#include "config/config_fields.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace focaldet::config::detail {

std::vector<Field> fields(Config& c) {
  return {
      {"run.name", &c.run.name},
      {"run.output_dir", &c.run.output_dir, /*is_path=*/true},
      {"run.seed", &c.run.seed},
      {"run.threads", &c.run.threads},
      {"run.nproc", &c.run.nproc},
      {"run.device", &c.run.device},

      {"data.image_root", &c.data.image_root, /*is_path=*/true},
      {"data.train", &c.data.train, /*is_path=*/true},
      {"data.val", &c.data.val, /*is_path=*/true},
      {"data.test", &c.data.test, /*is_path=*/true},
      {"data.num_classes", &c.data.num_classes},
      {"data.num_workers", &c.data.num_workers},
      {"data.shorter_sides", &c.data.shorter_sides},
      {"data.max_size", &c.data.max_size},
      {"data.hflip_prob", &c.data.hflip_prob},
      {"data.vflip_prob", &c.data.vflip_prob},
      {"data.brightness", &c.data.brightness},
      {"data.contrast", &c.data.contrast},
      {"data.saturation", &c.data.saturation},
      {"data.pad_divisor", &c.data.pad_divisor},
      {"data.group_by_aspect_ratio", &c.data.group_by_aspect_ratio},
      {"data.drop_images_without_boxes", &c.data.drop_images_without_boxes},

      {"model.depth", &c.model.depth},
      {"model.backbone_width", &c.model.backbone_width},
      {"model.norm", &c.model.norm},
      {"model.gn_groups", &c.model.gn_groups},
      {"model.trainable_layers", &c.model.trainable_layers},
      {"model.fpn_channels", &c.model.fpn_channels},
      {"model.p6_from", &c.model.p6_from},
      {"model.head_convs", &c.model.head_convs},
      {"model.head_channels", &c.model.head_channels},
      {"model.head_group_norm", &c.model.head_group_norm},
      {"model.head_gn_groups", &c.model.head_gn_groups},
      {"model.winograd", &c.model.winograd},
      {"model.prior", &c.model.prior},
      {"model.weights", &c.model.weights, /*is_path=*/true},
      {"model.weights_allow_missing", &c.model.weights_allow_missing},
      {"model.anchors.base_sizes", &c.model.anchors.base_sizes},
      {"model.anchors.octave_scales", &c.model.anchors.octave_scales},
      {"model.anchors.aspect_ratios", &c.model.anchors.aspect_ratios},
      {"model.anchors.grid", &c.model.anchors.grid},

      {"assigner.kind", &c.assigner.kind},
      {"assigner.pos_iou", &c.assigner.pos_iou},
      {"assigner.neg_iou", &c.assigner.neg_iou},
      {"assigner.low_quality_matches", &c.assigner.low_quality_matches},
      {"assigner.atss_top_k", &c.assigner.atss_top_k},
      {"assigner.crowd_ioa", &c.assigner.crowd_ioa},

      {"loss.cls", &c.loss.cls},
      {"loss.alpha", &c.loss.alpha},
      {"loss.gamma", &c.loss.gamma},
      {"loss.ohem_neg_pos_ratio", &c.loss.ohem_neg_pos_ratio},
      {"loss.easy_prob", &c.loss.easy_prob},
      {"loss.box", &c.loss.box},
      {"loss.smooth_l1_beta", &c.loss.smooth_l1_beta},
      {"loss.box_weight", &c.loss.box_weight},
      {"loss.normalizer", &c.loss.normalizer},

      {"optimizer.name", &c.optimizer.name},
      {"optimizer.lr", &c.optimizer.lr},
      {"optimizer.momentum", &c.optimizer.momentum},
      {"optimizer.nesterov", &c.optimizer.nesterov},
      {"optimizer.weight_decay", &c.optimizer.weight_decay},
      {"optimizer.beta1", &c.optimizer.beta1},
      {"optimizer.beta2", &c.optimizer.beta2},
      {"optimizer.eps", &c.optimizer.eps},
      {"optimizer.clip_grad_norm", &c.optimizer.clip_grad_norm},

      {"schedule.kind", &c.schedule.kind},
      {"schedule.warmup_iters", &c.schedule.warmup_iters},
      {"schedule.warmup_factor", &c.schedule.warmup_factor},
      {"schedule.steps", &c.schedule.steps},
      {"schedule.gamma", &c.schedule.gamma},
      {"schedule.min_lr_factor", &c.schedule.min_lr_factor},

      {"train.batch_size", &c.train.batch_size},
      {"train.max_iters", &c.train.max_iters},
      {"train.max_epochs", &c.train.max_epochs},
      {"train.max_minutes", &c.train.max_minutes},
      {"train.log_every", &c.train.log_every},
      {"train.eval_every", &c.train.eval_every},
      {"train.checkpoint_every", &c.train.checkpoint_every},
      {"train.ema_decay", &c.train.ema_decay},
      {"train.progress", &c.train.progress},

      {"eval.split", &c.eval.split},
      {"eval.batch_size", &c.eval.batch_size},
      {"eval.shorter_side", &c.eval.shorter_side},
      {"eval.max_images", &c.eval.max_images},

      {"inference.score_thresh", &c.inference.score_thresh},
      {"inference.topk_per_level", &c.inference.topk_per_level},
      {"inference.nms_thresh", &c.inference.nms_thresh},
      {"inference.max_detections", &c.inference.max_detections},
      {"inference.tta", &c.inference.tta},

      {"dist.timeout_seconds", &c.dist.timeout_seconds},
      {"dist.bucket_mb", &c.dist.bucket_mb},
      {"dist.overlap", &c.dist.overlap},
      {"dist.lr_scaling", &c.dist.lr_scaling},
      {"dist.check_sync_every", &c.dist.check_sync_every},
      {"dist.backend", &c.dist.backend},
  };
}

std::vector<std::string> children(const std::string& section) {
  Config scratch;
  const std::string prefix = section.empty() ? "" : section + ".";
  std::vector<std::string> names;
  for (const Field& f : fields(scratch)) {
    const std::string key = f.key;
    if (key.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string rest = key.substr(prefix.size());
    const std::string name = rest.substr(0, rest.find('.'));
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  }
  return names;
}

bool is_section(const std::string& key) { return !key.empty() && !children(key).empty(); }

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];  // row[i-1][j-1]
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

std::string format_double(double v) {
  char buf[40];
  // %.17g always reads back; fewer digits read nicer when they are enough (0.1, not
  // 0.10000000000000001).
  for (int precision = 15; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

}  // namespace focaldet::config::detail
