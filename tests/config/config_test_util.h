#pragma once
// Shared by the config tests: a temporary folder holding config files and a stub dataset
// (the config stage only checks that the files exist), and a field-by-field Config comparison.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>

#include "config/config.h"
#include "support/temp_dir.h"

namespace focaldet::config::test {

namespace fs = std::filesystem;

using focaldet::test::TempDir;

// The smallest valid config, for a file in the temp folder's root (5 lines; cases that add
// lines after it count from line 6).
constexpr const char* kMinimal =
    "data:\n"
    "  image_root: data/images\n"
    "  train: data/train.json\n"
    "train:\n"
    "  max_iters: 10\n";

// data/images/, data/train.json, data/val.json, data/test.json and data/weights.pt.
inline void write_stub_dataset(const TempDir& dir) {
  fs::create_directories(dir.path() / "data" / "images");
  for (const char* file : {"train.json", "val.json", "test.json", "weights.pt"}) {
    dir.write(std::string("data/") + file, "{}");
  }
}

// Every field but `path` and `origins`. Doubles are compared exactly on purpose: the config
// written for a run must read back bit-identical.
inline void expect_same_config(const Config& a, const Config& b) {
#define FOCALDET_EXPECT_FIELD(field) EXPECT_EQ(a.field, b.field) << #field
  FOCALDET_EXPECT_FIELD(run.name);
  FOCALDET_EXPECT_FIELD(run.output_dir);
  FOCALDET_EXPECT_FIELD(run.seed);
  FOCALDET_EXPECT_FIELD(run.threads);
  FOCALDET_EXPECT_FIELD(run.device);
  FOCALDET_EXPECT_FIELD(data.image_root);
  FOCALDET_EXPECT_FIELD(data.train);
  FOCALDET_EXPECT_FIELD(data.val);
  FOCALDET_EXPECT_FIELD(data.test);
  FOCALDET_EXPECT_FIELD(data.num_classes);
  FOCALDET_EXPECT_FIELD(data.num_workers);
  FOCALDET_EXPECT_FIELD(data.shorter_sides);
  FOCALDET_EXPECT_FIELD(data.max_size);
  FOCALDET_EXPECT_FIELD(data.hflip_prob);
  FOCALDET_EXPECT_FIELD(data.vflip_prob);
  FOCALDET_EXPECT_FIELD(data.pad_divisor);
  FOCALDET_EXPECT_FIELD(data.group_by_aspect_ratio);
  FOCALDET_EXPECT_FIELD(data.drop_images_without_boxes);
  FOCALDET_EXPECT_FIELD(model.depth);
  FOCALDET_EXPECT_FIELD(model.norm);
  FOCALDET_EXPECT_FIELD(model.gn_groups);
  FOCALDET_EXPECT_FIELD(model.trainable_layers);
  FOCALDET_EXPECT_FIELD(model.fpn_channels);
  FOCALDET_EXPECT_FIELD(model.p6_from);
  FOCALDET_EXPECT_FIELD(model.head_convs);
  FOCALDET_EXPECT_FIELD(model.head_channels);
  FOCALDET_EXPECT_FIELD(model.head_group_norm);
  FOCALDET_EXPECT_FIELD(model.head_gn_groups);
  FOCALDET_EXPECT_FIELD(model.prior);
  FOCALDET_EXPECT_FIELD(model.weights);
  FOCALDET_EXPECT_FIELD(model.weights_allow_missing);
  FOCALDET_EXPECT_FIELD(model.anchors.base_sizes);
  FOCALDET_EXPECT_FIELD(model.anchors.octave_scales);
  FOCALDET_EXPECT_FIELD(model.anchors.aspect_ratios);
  FOCALDET_EXPECT_FIELD(model.anchors.grid);
  FOCALDET_EXPECT_FIELD(assigner.kind);
  FOCALDET_EXPECT_FIELD(assigner.pos_iou);
  FOCALDET_EXPECT_FIELD(assigner.neg_iou);
  FOCALDET_EXPECT_FIELD(assigner.low_quality_matches);
  FOCALDET_EXPECT_FIELD(assigner.atss_top_k);
  FOCALDET_EXPECT_FIELD(assigner.crowd_ioa);
  FOCALDET_EXPECT_FIELD(loss.cls);
  FOCALDET_EXPECT_FIELD(loss.alpha);
  FOCALDET_EXPECT_FIELD(loss.gamma);
  FOCALDET_EXPECT_FIELD(loss.ohem_neg_pos_ratio);
  FOCALDET_EXPECT_FIELD(loss.easy_prob);
  FOCALDET_EXPECT_FIELD(loss.box);
  FOCALDET_EXPECT_FIELD(loss.smooth_l1_beta);
  FOCALDET_EXPECT_FIELD(loss.box_weight);
  FOCALDET_EXPECT_FIELD(loss.normalizer);
  FOCALDET_EXPECT_FIELD(optimizer.name);
  FOCALDET_EXPECT_FIELD(optimizer.lr);
  FOCALDET_EXPECT_FIELD(optimizer.momentum);
  FOCALDET_EXPECT_FIELD(optimizer.nesterov);
  FOCALDET_EXPECT_FIELD(optimizer.weight_decay);
  FOCALDET_EXPECT_FIELD(optimizer.beta1);
  FOCALDET_EXPECT_FIELD(optimizer.beta2);
  FOCALDET_EXPECT_FIELD(optimizer.eps);
  FOCALDET_EXPECT_FIELD(optimizer.clip_grad_norm);
  FOCALDET_EXPECT_FIELD(schedule.kind);
  FOCALDET_EXPECT_FIELD(schedule.warmup_iters);
  FOCALDET_EXPECT_FIELD(schedule.warmup_factor);
  FOCALDET_EXPECT_FIELD(schedule.steps);
  FOCALDET_EXPECT_FIELD(schedule.gamma);
  FOCALDET_EXPECT_FIELD(schedule.min_lr_factor);
  FOCALDET_EXPECT_FIELD(train.batch_size);
  FOCALDET_EXPECT_FIELD(train.max_iters);
  FOCALDET_EXPECT_FIELD(train.max_epochs);
  FOCALDET_EXPECT_FIELD(train.max_minutes);
  FOCALDET_EXPECT_FIELD(train.log_every);
  FOCALDET_EXPECT_FIELD(train.eval_every);
  FOCALDET_EXPECT_FIELD(train.checkpoint_every);
  FOCALDET_EXPECT_FIELD(train.progress);
  FOCALDET_EXPECT_FIELD(eval.split);
  FOCALDET_EXPECT_FIELD(eval.batch_size);
  FOCALDET_EXPECT_FIELD(eval.shorter_side);
  FOCALDET_EXPECT_FIELD(eval.max_images);
  FOCALDET_EXPECT_FIELD(inference.score_thresh);
  FOCALDET_EXPECT_FIELD(inference.topk_per_level);
  FOCALDET_EXPECT_FIELD(inference.nms_thresh);
  FOCALDET_EXPECT_FIELD(inference.max_detections);
  FOCALDET_EXPECT_FIELD(inference.tta);
#undef FOCALDET_EXPECT_FIELD
}

}  // namespace focaldet::config::test
