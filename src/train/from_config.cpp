#include "train/from_config.h"

#include <ATen/Parallel.h>

#include <thread>

#include "common/error.h"
#include "config/config_io.h"
#include "model/weight_import.h"

namespace focaldet::train {

DetectorOptions detector_options(const config::Config& c, int64_t num_classes) {
  DetectorOptions o;
  const config::ModelConfig& m = c.model;
  o.model.backbone.depth = m.depth;
  o.model.backbone.width = m.backbone_width;
  o.model.backbone.norm = model::parse_norm_kind(m.norm);
  o.model.backbone.gn_groups = m.gn_groups;
  o.model.trainable_layers = m.trainable_layers;
  o.model.fpn_channels = m.fpn_channels;
  o.model.p6_from = m.p6_from == "c5" ? model::P6Source::kC5 : model::P6Source::kP5;
  o.model.head.num_convs = m.head_convs;
  o.model.head.channels = m.head_channels;
  o.model.head.group_norm = m.head_group_norm;
  o.model.head.gn_groups = m.head_gn_groups;
  o.model.head.winograd = m.winograd;
  o.model.head.prior = m.prior;
  o.model.head.num_classes = num_classes;
  o.anchors.base_sizes = m.anchors.base_sizes;
  o.anchors.octave_scales = m.anchors.octave_scales;
  o.anchors.aspect_ratios = m.anchors.aspect_ratios;
  if (m.anchors.grid == "level") {
    for (size_t l = 0; l < m.anchors.base_sizes.size(); ++l) o.anchors.strides.push_back(8 << l);
  }

  const config::AssignerConfig& a = c.assigner;
  o.assigner = parse_assigner(a.kind);
  o.max_iou.pos_iou = a.pos_iou;
  o.max_iou.neg_iou = a.neg_iou;
  o.max_iou.low_quality_matches = a.low_quality_matches;
  o.max_iou.crowd_ioa = a.crowd_ioa;
  o.atss.top_k = a.atss_top_k;
  o.atss.crowd_ioa = a.crowd_ioa;

  const config::LossConfig& l = c.loss;
  o.cls.kind = loss::parse_cls_loss(l.cls);
  o.cls.alpha = l.alpha;
  o.cls.gamma = l.gamma;
  o.cls.ohem_neg_pos_ratio = l.ohem_neg_pos_ratio;
  o.cls.easy_prob = l.easy_prob;
  o.box = parse_box_loss(l.box);
  o.smooth_l1_beta = l.smooth_l1_beta;
  o.box_weight = l.box_weight;
  o.normalize = parse_normalize_mode(l.normalizer);

  const config::InferenceConfig& i = c.inference;
  o.postprocess.score_thresh = i.score_thresh;
  o.postprocess.topk_per_level = i.topk_per_level;
  o.postprocess.nms_thresh = i.nms_thresh;
  o.postprocess.max_detections = i.max_detections;
  o.tta = i.tta;
  return o;
}

data::LoaderOptions train_loader_options(const config::Config& c) {
  data::LoaderOptions o;
  o.image_root = c.data.image_root;
  o.transform.shorter_sides = c.data.shorter_sides;
  o.transform.max_size = c.data.max_size;
  o.transform.flip_prob = c.data.hflip_prob;
  o.transform.vflip_prob = c.data.vflip_prob;
  o.transform.jitter = {c.data.brightness, c.data.contrast, c.data.saturation};
  o.sampler.batch_size = c.train.batch_size;
  o.sampler.shuffle = true;
  o.sampler.seed = c.run.seed;
  o.sampler.drop_last = true;  // equal batches: steady steps and a clean loss average
  o.sampler.group_by_aspect_ratio = c.data.group_by_aspect_ratio;
  o.num_workers = c.data.num_workers;
  o.pad_divisor = c.data.pad_divisor;
  o.drop_images_without_boxes = c.data.drop_images_without_boxes;
  return o;
}

data::LoaderOptions eval_loader_options(const config::Config& c) {
  data::LoaderOptions o = train_loader_options(c);
  const int side = c.eval.shorter_side > 0 ? c.eval.shorter_side : c.data.shorter_sides.at(0);
  o.transform.shorter_sides = {side};
  o.transform.flip_prob = 0;
  o.transform.vflip_prob = 0;
  o.transform.jitter = {};
  o.sampler.batch_size = c.eval.batch_size;
  o.sampler.shuffle = false;
  o.sampler.drop_last = false;
  o.sampler.group_by_aspect_ratio = false;
  o.drop_images_without_boxes = false;
  return o;
}

OptimizerOptions optimizer_options(const config::Config& c) {
  OptimizerOptions o;
  o.name = c.optimizer.name;
  o.lr = c.optimizer.lr;
  o.momentum = c.optimizer.momentum;
  o.nesterov = c.optimizer.nesterov;
  o.weight_decay = c.optimizer.weight_decay;
  o.beta1 = c.optimizer.beta1;
  o.beta2 = c.optimizer.beta2;
  o.eps = c.optimizer.eps;
  return o;
}

ScheduleOptions schedule_options(const config::Config& c) {
  ScheduleOptions o;
  o.kind = parse_schedule(c.schedule.kind);
  o.base_lr = c.optimizer.lr;
  o.warmup_iters = c.schedule.warmup_iters;
  o.warmup_factor = c.schedule.warmup_factor;
  o.steps = c.schedule.steps;
  o.gamma = c.schedule.gamma;
  o.min_lr_factor = c.schedule.min_lr_factor;
  return o;
}

std::string split_path(const config::Config& c, const std::string& split) {
  const std::string* path = split == "train" ? &c.data.train
                            : split == "val" ? &c.data.val
                            : split == "test" ? &c.data.test
                                              : nullptr;
  check(path != nullptr, "unknown split '" + split + "' (expected train, val or test)");
  check(!path->empty(), config::where(c, "data." + split) + ": the config names no " + split +
                            " split (data." + split + ")");
  return *path;
}

namespace {

// The dataset restricted to its first `n` images (eval.max_images: quick evaluations).
data::CocoDataset first_images(const data::CocoDataset& d, std::size_t n) {
  if (n >= d.images.size()) return d;
  data::CocoDataset out;
  out.path = d.path;
  out.categories = d.categories;
  out.category_to_contiguous = d.category_to_contiguous;
  out.contiguous_to_category = d.contiguous_to_category;
  out.images.assign(d.images.begin(), d.images.begin() + static_cast<std::ptrdiff_t>(n));
  out.annotations_of_image.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    out.image_index[out.images[i].id] = i;
    for (std::size_t a : d.annotations_of_image[i]) {
      out.annotations_of_image[i].push_back(out.annotations.size());
      out.annotations.push_back(d.annotations[a]);
    }
  }
  return out;
}

}  // namespace

std::shared_ptr<const data::CocoDataset> read_split(const config::Config& c,
                                                    const std::string& split, bool for_training,
                                                    int max_images) {
  data::CocoReadOptions options;
  options.sanitize_boxes = for_training;
  options.image_root = c.data.image_root;
  options.drop_empty_images = for_training && c.data.drop_images_without_boxes;
  auto dataset =
      std::make_shared<data::CocoDataset>(data::read_coco(split_path(c, split), options));
  const auto classes = static_cast<int64_t>(dataset->categories.size());
  check(c.data.num_classes == 0 || c.data.num_classes == classes,
        config::where(c, "data.num_classes") + ": data.num_classes is " +
            std::to_string(c.data.num_classes) + " but " + dataset->path + " has " +
            std::to_string(classes) + " categories");
  check(classes > 0, dataset->path + ": no categories");
  if (max_images > 0) {
    return std::make_shared<data::CocoDataset>(
        first_images(*dataset, static_cast<std::size_t>(max_images)));
  }
  return dataset;
}

std::unique_ptr<Detector> make_detector(const config::Config& c, int64_t num_classes,
                                        bool load_weights, const torch::Device& device) {
  auto detector = std::make_unique<Detector>(detector_options(c, num_classes));
  if (load_weights && !c.model.weights.empty()) {
    model::WeightImportOptions w;
    w.allow_missing = c.model.weights_allow_missing;
    // The class layer depends on the dataset: keep its prior-probability init.
    w.skip_prefixes = {"head.classification_head.cls_logits."};
    model::load_weights(*detector->model(), c.model.weights, w);
  }
  detector->to(device);
  return detector;
}

int default_threads(int cores, int local_world_size) {
  return std::max(1, std::max(1, cores) / std::max(1, local_world_size));
}

int apply_threads(const config::Config& c, int local_world_size) {
  const int threads =
      c.run.threads > 0
          ? c.run.threads
          : default_threads(static_cast<int>(std::thread::hardware_concurrency()), local_world_size);
  at::set_num_threads(threads);
  return threads;
}

}  // namespace focaldet::train
