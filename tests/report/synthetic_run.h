#pragma once
// Small run directories written by hand for the report tests: a config.yaml with the keys the
// report reads, metrics.jsonl log lines and eval.jsonl evaluations with chosen values.
#include <cstdio>
#include <string>
#include <vector>

#include "support/temp_dir.h"

namespace focaldet::test {

struct SyntheticRun {
  std::string name = "bccd_focal";
  std::string cls = "focal";
  double gamma = 2, alpha = 0.25;
  int seed = 0;
  std::string val = "/data/bccd/coco/instances_test.json";
  std::vector<std::string> classes = {"RBC", "WBC", "Platelets"};
  std::vector<int> log_iters = {10, 20, 30};
  std::vector<double> loss = {1.0, 0.8, 0.6};  // per log iteration; loss_cls is half of it
  double easy_neg_share = 0.02;
  double num_pos = 800;  // per batch of 8: 100 per image
  double images = 0;     // images per step in metrics.jsonl (0: not logged, as before)
  std::vector<int> eval_iters = {30};
  std::vector<double> ap = {0.5};  // per eval iteration; per class: ap - 0.1, ap, ap + 0.1
  bool finished = true;
};

inline std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

// Writes `r` into dir/relative and returns its path.
inline std::string write_run(const TempDir& dir, const std::string& relative,
                             const SyntheticRun& r) {
  dir.write(relative + "/config.yaml",
            "run:\n  name: " + r.name + "\n  output_dir: /tmp/runs\n  seed: " +
                std::to_string(r.seed) + "\n  threads: 0\ndata:\n  val: " + r.val +
                "\n  shorter_sides: [320]\nloss:\n  cls: " + r.cls + "\n  alpha: " + num(r.alpha) +
                "\n  gamma: " + num(r.gamma) + "\ntrain:\n  batch_size: 8\n  max_iters: 30\n");
  std::string metrics;
  for (size_t i = 0; i < r.log_iters.size(); ++i) {
    const double cls = r.loss[i] / 2;
    metrics += "{\"iter\":" + std::to_string(r.log_iters[i]) + ",\"loss\":" + num(r.loss[i]) +
               ",\"loss_cls\":" + num(cls) + ",\"loss_box\":" + num(r.loss[i] - cls) +
               ",\"loss_cls_pos\":" + num(cls * 0.5) +
               ",\"loss_cls_neg_hard\":" + num(cls * (0.5 - r.easy_neg_share)) +
               ",\"loss_cls_neg_easy\":" + num(cls * r.easy_neg_share) +
               ",\"easy_neg_share\":" + num(r.easy_neg_share) + ",\"num_pos\":" + num(r.num_pos) +
               (r.images > 0 ? ",\"images\":" + num(r.images) : std::string()) + "}\n";
  }
  dir.write(relative + "/metrics.jsonl", metrics);
  std::string evals;
  for (size_t i = 0; i < r.eval_iters.size(); ++i) {
    std::string per_class;
    for (size_t k = 0; k < r.classes.size(); ++k)
      per_class += (k ? "," : "") + ("\"" + r.classes[k] + "\":" + num(r.ap[i] - 0.1 + 0.1 * k));
    evals += "{\"iter\":" + std::to_string(r.eval_iters[i]) + ",\"split\":\"val\",\"AP\":" +
             num(r.ap[i]) + ",\"AP50\":" + num(r.ap[i] + 0.3) + ",\"AP75\":" + num(r.ap[i]) +
             ",\"AR100\":0.6,\"AP_per_class\":{" + per_class + "},\"seconds\":1.5}\n";
  }
  if (!r.eval_iters.empty()) dir.write(relative + "/eval.jsonl", evals);
  dir.write(relative + "/train.log",
            r.finished ? "[2026-01-01 00:00:00] done: 30 iterations in 0:10\n"
                       : "[2026-01-01 00:00:00] iter 20\n");
  return dir / relative;
}

}  // namespace focaldet::test
