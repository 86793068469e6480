// validate(): range and consistency checks, and that the dataset files exist. Every problem is
// collected, so one run names them all, each with the key and the file:line that set it.
// Comparisons are written so that NaN (possible in a Config built in code) fails them.
#include <filesystem>
#include <initializer_list>
#include <string>
#include <vector>

#include "common/error.h"
#include "config/config_fields.h"
#include "config/config_io.h"

namespace focaldet::config {
namespace {

namespace fs = std::filesystem;
using detail::format_double;

// "cpu", "cuda" or "cuda:N" with N a GPU index (decimal digits, no sign).
bool is_device_name(const std::string& name) {
  if (name == "cpu" || name == "cuda") return true;
  const std::string prefix = "cuda:";
  if (name.size() <= prefix.size() || name.size() > prefix.size() + 3 ||
      name.compare(0, prefix.size(), prefix) != 0) {
    return false;
  }
  for (size_t i = prefix.size(); i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
  }
  return true;
}

class Checker {
 public:
  explicit Checker(const Config& config) : config_(config) {}

  // "configs/x.yaml:12: loss.gamma: must be >= 0, got -1"; a key no file set is named alone.
  void check(bool ok, const std::string& key, const std::string& what) {
    if (ok) return;
    const auto it = config_.origins.find(key);
    const std::string at = it != config_.origins.end() ? it->second : config_.path;
    errors_.push_back((at.empty() ? "" : at + ": ") + key + ": " + what);
  }

  void one_of(const std::string& key, const std::string& value,
              std::initializer_list<const char*> allowed) {
    std::string names;
    bool found = false;
    for (const char* name : allowed) {
      names += (names.empty() ? "" : ", ") + std::string(name);
      found = found || value == name;
    }
    check(found, key, "must be one of " + names + "; got '" + value + "'");
  }

  // lo <= value <= hi, with open ends where asked: "must be in (0, 1], got 1.5".
  void in_range(const std::string& key, double value, double lo, double hi, bool lo_open,
                bool hi_open) {
    const bool ok = (lo_open ? value > lo : value >= lo) && (hi_open ? value < hi : value <= hi);
    check(ok, key,
          std::string("must be in ") + (lo_open ? "(" : "[") + format_double(lo) + ", " +
              format_double(hi) + (hi_open ? ")" : "]") + ", got " + format_double(value));
  }
  void at_least(const std::string& key, double value, double lo) {
    check(value >= lo, key, "must be >= " + format_double(lo) + ", got " + format_double(value));
  }
  void positive(const std::string& key, double value) {
    check(value > 0, key, "must be > 0, got " + format_double(value));
  }

  void file(const std::string& key, const std::string& path, const char* what) {
    std::error_code ec;
    if (path.empty()) {
      check(false, key, std::string("not set; name ") + what);
    } else if (fs::is_directory(path, ec)) {
      check(false, key, "'" + path + "' is a folder; name " + what);
    } else {
      check(fs::is_regular_file(path, ec), key, "no such file '" + path + "'");
    }
  }
  void folder(const std::string& key, const std::string& path, const char* what) {
    std::error_code ec;
    if (path.empty()) {
      check(false, key, std::string("not set; name ") + what);
    } else if (fs::exists(path, ec)) {
      check(fs::is_directory(path, ec), key, "'" + path + "' is not a folder");
    } else {
      check(false, key, "no such folder '" + path + "'");
    }
  }

  void error(const std::string& message) { errors_.push_back(message); }

  void finish() const {
    std::string message;
    for (const std::string& e : errors_) message += (message.empty() ? "" : "\n") + e;
    if (!message.empty()) throw Error(message);
  }

 private:
  const Config& config_;
  std::vector<std::string> errors_;
};

void check_run_and_data(const Config& c, Checker& k) {
  const std::string& name = c.run.name;
  k.check(!name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos,
          "run.name", "must be a plain folder name, got '" + name + "'");
  k.check(!c.run.output_dir.empty(), "run.output_dir", "must not be empty");
  k.at_least("run.threads", c.run.threads, 0);
  k.at_least("run.nproc", c.run.nproc, 1);
  // Only the spelling here; whether this LibTorch and machine have that GPU is checked when the
  // device is made (train/device.h), with this key's line.
  k.check(is_device_name(c.run.device), "run.device",
          "must be cpu, cuda or cuda:N (N a GPU index), got '" + c.run.device + "'");

  k.folder("data.image_root", c.data.image_root, "the folder the images are in");
  k.file("data.train", c.data.train, "the COCO instances json to train on");
  if (!c.data.val.empty()) k.file("data.val", c.data.val, "a COCO instances json");
  if (!c.data.test.empty()) k.file("data.test", c.data.test, "a COCO instances json");
  k.at_least("data.num_classes", static_cast<double>(c.data.num_classes), 0);
  k.at_least("data.num_workers", c.data.num_workers, 0);
  k.check(!c.data.shorter_sides.empty(), "data.shorter_sides", "must not be empty");
  for (int side : c.data.shorter_sides) {
    k.check(side > 0, "data.shorter_sides", "every size must be > 0, got " + std::to_string(side));
  }
  k.positive("data.max_size", c.data.max_size);
  k.in_range("data.hflip_prob", c.data.hflip_prob, 0, 1, false, false);
  k.in_range("data.vflip_prob", c.data.vflip_prob, 0, 1, false, false);
  k.at_least("data.brightness", c.data.brightness, 0);
  k.at_least("data.contrast", c.data.contrast, 0);
  k.at_least("data.saturation", c.data.saturation, 0);
  // 32 is the stride of C5: a padded size not divisible by it misaligns the FPN levels.
  k.check(c.data.pad_divisor > 0 && c.data.pad_divisor % 32 == 0, "data.pad_divisor",
          "must be a positive multiple of 32, got " + std::to_string(c.data.pad_divisor));
}

void check_model(const Config& c, Checker& k) {
  const ModelConfig& m = c.model;
  k.check(m.depth == 18 || m.depth == 34 || m.depth == 50, "model.depth",
          "must be 18, 34 or 50, got " + std::to_string(m.depth));
  k.check(m.backbone_width >= 8 && m.backbone_width % 8 == 0, "model.backbone_width",
          "must be a positive multiple of 8, got " + std::to_string(m.backbone_width));
  k.one_of("model.norm", m.norm, {"bn", "frozen_bn", "gn"});
  if (m.norm == "gn") {
    // Every ResNet channel count is a multiple of the stem's, so dividing that is enough.
    const int64_t w = m.backbone_width;
    k.check(m.gn_groups >= 1 && w > 0 && w % m.gn_groups == 0, "model.gn_groups",
            "must divide model.backbone_width (" + std::to_string(w) +
                ", the smallest ResNet channel count), got " + std::to_string(m.gn_groups));
  }
  k.in_range("model.trainable_layers", m.trainable_layers, 0, 5, false, false);
  k.at_least("model.fpn_channels", static_cast<double>(m.fpn_channels), 1);
  k.one_of("model.p6_from", m.p6_from, {"p5", "c5"});
  k.at_least("model.head_convs", static_cast<double>(m.head_convs), 0);
  k.at_least("model.head_channels", static_cast<double>(m.head_channels), 1);
  if (m.head_group_norm) {
    k.check(m.head_gn_groups >= 1 && m.head_channels % m.head_gn_groups == 0,
            "model.head_gn_groups",
            "must divide model.head_channels (" + std::to_string(m.head_channels) + "), got " +
                std::to_string(m.head_gn_groups));
  }
  k.in_range("model.prior", m.prior, 0, 1, true, true);
  if (!m.weights.empty()) k.file("model.weights", m.weights, "a state dict");
  const std::pair<const char*, const std::vector<double>*> lists[] = {
      {"model.anchors.base_sizes", &m.anchors.base_sizes},
      {"model.anchors.octave_scales", &m.anchors.octave_scales},
      {"model.anchors.aspect_ratios", &m.anchors.aspect_ratios}};
  for (const auto& [key, values] : lists) {
    k.check(!values->empty(), key, "must not be empty");
    for (double v : *values)
      k.check(v > 0, key, "every value must be > 0, got " + format_double(v));
  }
  k.one_of("model.anchors.grid", m.anchors.grid, {"level", "torchvision"});
}

void check_assigner_and_loss(const Config& c, Checker& k) {
  k.one_of("assigner.kind", c.assigner.kind, {"max_iou", "atss"});
  k.in_range("assigner.pos_iou", c.assigner.pos_iou, 0, 1, false, false);
  k.in_range("assigner.neg_iou", c.assigner.neg_iou, 0, 1, false, false);
  k.check(c.assigner.pos_iou >= c.assigner.neg_iou, "assigner.pos_iou",
          "must be >= assigner.neg_iou (" + format_double(c.assigner.neg_iou) + "), got " +
              format_double(c.assigner.pos_iou));
  k.at_least("assigner.atss_top_k", static_cast<double>(c.assigner.atss_top_k), 1);
  k.in_range("assigner.crowd_ioa", c.assigner.crowd_ioa, 0, 1, false, false);

  const LossConfig& l = c.loss;
  k.one_of("loss.cls", l.cls, {"focal", "ce", "alpha_ce", "ohem", "softmax_focal"});
  // -1 is the one negative value: "no alpha balancing" (torchvision's convention).
  k.check(l.alpha == -1 || (l.alpha >= 0 && l.alpha <= 1), "loss.alpha",
          "must be in [0, 1], or -1 for no balancing, got " + format_double(l.alpha));
  k.at_least("loss.gamma", l.gamma, 0);
  k.positive("loss.ohem_neg_pos_ratio", l.ohem_neg_pos_ratio);
  k.in_range("loss.easy_prob", l.easy_prob, 0, 1, true, true);
  k.one_of("loss.box", l.box, {"smooth_l1", "l1", "giou"});
  k.at_least("loss.smooth_l1_beta", l.smooth_l1_beta, 0);
  k.at_least("loss.box_weight", l.box_weight, 0);
  k.one_of("loss.normalizer", l.normalizer, {"num_pos", "ema", "per_image"});
}

void check_optimizer_and_schedule(const Config& c, Checker& k) {
  const OptimizerConfig& o = c.optimizer;
  k.one_of("optimizer.name", o.name, {"sgd", "adamw"});
  k.positive("optimizer.lr", o.lr);
  k.in_range("optimizer.momentum", o.momentum, 0, 1, false, true);
  k.at_least("optimizer.weight_decay", o.weight_decay, 0);
  k.in_range("optimizer.beta1", o.beta1, 0, 1, false, true);
  k.in_range("optimizer.beta2", o.beta2, 0, 1, false, true);
  k.positive("optimizer.eps", o.eps);
  k.at_least("optimizer.clip_grad_norm", o.clip_grad_norm, 0);

  const ScheduleConfig& s = c.schedule;
  k.one_of("schedule.kind", s.kind, {"constant", "step", "cosine"});
  k.at_least("schedule.warmup_iters", static_cast<double>(s.warmup_iters), 0);
  k.in_range("schedule.warmup_factor", s.warmup_factor, 0, 1, true, false);
  for (std::size_t i = 0; i < s.steps.size(); ++i) {
    k.check(
        s.steps[i] > 0 && s.steps[i] < 1, "schedule.steps",
        "every step must be a fraction of the budget in (0, 1), got " + format_double(s.steps[i]));
    if (i > 0) {
      k.check(s.steps[i] > s.steps[i - 1], "schedule.steps",
              "must be ascending, got " + format_double(s.steps[i]) + " after " +
                  format_double(s.steps[i - 1]));
    }
  }
  k.positive("schedule.gamma", s.gamma);
  k.in_range("schedule.min_lr_factor", s.min_lr_factor, 0, 1, false, false);
}

void check_train_eval_inference(const Config& c, Checker& k) {
  const TrainConfig& t = c.train;
  k.at_least("train.batch_size", static_cast<double>(t.batch_size), 1);
  const std::pair<const char*, double> budgets[] = {
      {"train.max_iters", static_cast<double>(t.max_iters)},
      {"train.max_epochs", static_cast<double>(t.max_epochs)},
      {"train.max_minutes", t.max_minutes}};
  std::vector<std::string> set;
  const char* named = nullptr;  // a budget key a file named, to point the "no budget" error at
  for (const auto& [key, value] : budgets) {
    k.at_least(key, value, 0);
    if (value > 0) set.push_back(key);
    if (!named && c.origins.count(key)) named = key;
  }
  const std::string how =
      "set exactly one of train.max_iters, train.max_epochs, "
      "train.max_minutes to a value > 0";
  if (set.empty() && named) k.check(false, named, "no training budget: " + how);
  if (set.empty() && !named) {
    k.error((c.path.empty() ? "" : c.path + ": ") + "train: no training budget: " + how);
  }
  for (std::size_t i = 1; i < set.size(); ++i) {
    k.check(false, set[i],
            "only one budget may be set, but " + set[0] + " is set too (" + where(c, set[0]) +
                "); " + how);
  }
  k.at_least("train.log_every", static_cast<double>(t.log_every), 1);
  k.at_least("train.eval_every", static_cast<double>(t.eval_every), 0);
  k.at_least("train.checkpoint_every", static_cast<double>(t.checkpoint_every), 0);
  k.in_range("train.ema_decay", t.ema_decay, 0, 1, false, true);
  k.one_of("train.progress", t.progress, {"auto", "on", "off"});

  k.one_of("eval.split", c.eval.split, {"train", "val", "test"});
  k.at_least("eval.batch_size", static_cast<double>(c.eval.batch_size), 1);
  k.at_least("eval.shorter_side", c.eval.shorter_side, 0);
  k.at_least("eval.max_images", c.eval.max_images, 0);

  const InferenceConfig& i = c.inference;
  k.in_range("inference.score_thresh", i.score_thresh, 0, 1, false, true);
  k.at_least("inference.topk_per_level", static_cast<double>(i.topk_per_level), 1);
  k.in_range("inference.nms_thresh", i.nms_thresh, 0, 1, true, false);
  k.at_least("inference.max_detections", static_cast<double>(i.max_detections), 1);
  k.one_of("inference.tta", i.tta, {"none", "hflip", "hvflip"});

  const DistConfig& d = c.dist;
  k.positive("dist.timeout_seconds", d.timeout_seconds);
  k.positive("dist.bucket_mb", d.bucket_mb);
  k.one_of("dist.lr_scaling", d.lr_scaling, {"none", "linear"});
  k.at_least("dist.check_sync_every", static_cast<double>(d.check_sync_every), 0);
  // Whether nccl can run depends on the binary and the device: checked when training starts.
  k.one_of("dist.backend", d.backend, {"auto", "gloo", "nccl"});
}

}  // namespace

void validate(const Config& config) {
  Checker checker(config);
  check_run_and_data(config, checker);
  check_model(config, checker);
  check_assigner_and_loss(config, checker);
  check_optimizer_and_schedule(config, checker);
  check_train_eval_inference(config, checker);
  checker.finish();
}

}  // namespace focaldet::config
