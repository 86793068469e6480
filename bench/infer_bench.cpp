// focaldet_infer_bench: end-to-end inference of one decoded image, timed as
// scripts/bench_vs_torchvision.sh compares it with torchvision's RetinaNet in eval mode:
// resize + normalise + pad (data::transform_image, data::collate), then train::Detector::detect
// (backbone, FPN, head, anchors, post-processing, boxes back in original pixels). Decoding the
// JPEG is outside the timing, as on the torchvision side.
//
//   focaldet_infer_bench --weights W.pt --image IMG [--shorter-side 480] [--max-size 640]
//       [--classes 91] [--max-detections 300] [--threads 2] [--warm 2] [--reps 5] [--dets OUT.txt]
//       [--stages] [--dense] [--no-winograd]
//       [--trace OUT.json]
//
// The model is torchvision's retinanet_resnet50_fpn layout (the defaults of DetectorOptions);
// W.pt is a state dict from scripts/export_torchvision_weights.py (the script writes one).
// Prints one line per timed run ("run i: S s") and "median_img_per_s=X". --dets writes the
// detections of the last run, one per line: "label score x1 y1 x2 y2". --stages times the
// stages of one extra pass apart; --trace writes one extra pass as a LibTorch profiler trace
// (chrome://tracing json).
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/types.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <vector>

#include "common/malloc_settings.h"
#include "data/collate.h"
#include "data/transforms.h"
#include "model/weight_import.h"
#include "train/detector.h"

namespace {

using namespace focaldet;
using Clock = std::chrono::steady_clock;

struct Args {
  std::string weights, image, dets, trace;
  int shorter_side = 480, max_size = 640, threads = 2, warm = 2, reps = 5;
  int64_t classes = 91;
  int64_t max_detections = 300;  // torchvision RetinaNet's detections_per_img default
  bool stages = false;
  bool dense = false;  // the dense path instead of the blocked (mkldnn) one, for A/B runs
  bool no_winograd = false;  // the blocked head without oneDNN's Winograd convolution
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << k << ": missing value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (k == "--weights")
      a.weights = value();
    else if (k == "--image")
      a.image = value();
    else if (k == "--dets")
      a.dets = value();
    else if (k == "--trace")
      a.trace = value();
    else if (k == "--shorter-side")
      a.shorter_side = std::stoi(value());
    else if (k == "--max-size")
      a.max_size = std::stoi(value());
    else if (k == "--threads")
      a.threads = std::stoi(value());
    else if (k == "--warm")
      a.warm = std::stoi(value());
    else if (k == "--reps")
      a.reps = std::stoi(value());
    else if (k == "--classes")
      a.classes = std::stoll(value());
    else if (k == "--max-detections")
      a.max_detections = std::stoll(value());
    else if (k == "--stages")
      a.stages = true;
    else if (k == "--dense")
      a.dense = true;
    else if (k == "--no-winograd")
      a.no_winograd = true;
    else {
      std::cerr << "unknown argument " << k << "\n";
      std::exit(2);
    }
  }
  if (a.weights.empty() || a.image.empty() || a.reps < 1 || a.warm < 0) {
    std::cerr << "usage: focaldet_infer_bench --weights W.pt --image IMG [--reps N >= 1]\n";
    std::exit(2);
  }
  return a;
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// What torchvision's GeneralizedRCNNTransform does to one image: resize, ImageNet
// normalisation, pad to 32; no flips.
data::TransformOptions transform_options(const Args& a) {
  data::TransformOptions t;
  t.shorter_sides = {a.shorter_side};
  t.max_size = a.max_size;
  t.flip_prob = 0.0;
  return t;
}

constexpr int kPadDivisor = 32;  // torchvision's size_divisible

std::vector<infer::Detections> infer_once(train::Detector& detector, const cv::Mat& bgr,
                                          const data::TransformOptions& t) {
  data::TransformParams params;
  params.shorter_side = t.shorter_sides.at(0);
  const data::TransformedSample sample = data::transform_image(bgr, params, t, {}, {}, {});
  const data::Batch batch = data::collate({sample}, t, kPadDivisor);
  return detector.detect(batch);
}

// One pass with each stage timed apart: the calls Detector::detect makes, one by one.
void print_stages(train::Detector& detector, const cv::Mat& bgr, const data::TransformOptions& t) {
  torch::NoGradGuard no_grad;
  std::vector<std::pair<const char*, double>> ms;
  auto t0 = Clock::now();
  auto lap = [&](const char* name) {
    ms.emplace_back(name, seconds_since(t0) * 1e3);
    t0 = Clock::now();
  };
  data::TransformParams params;
  params.shorter_side = t.shorter_sides.at(0);
  const data::TransformedSample sample = data::transform_image(bgr, params, t, {}, {}, {});
  const data::Batch batch = data::collate({sample}, t, kPadDivisor);
  lap("resize+normalise+pad");
  model::RetinaNet& net = detector.model();
  const bool blocked = net->runs_blocked(batch.images);
  const auto c = net->body()->forward(blocked ? batch.images.to_mkldnn() : batch.images);
  lap("backbone");
  const auto p = net->fpn()->forward(c);  // blocked when the input is
  lap("fpn");
  const auto h = net->head()->forward(p);
  lap("head");
  std::vector<anchors::Size2> sizes;
  for (const auto& f : p) sizes.emplace_back(f.size(2), f.size(3));
  anchors::AnchorGenerator gen(detector.options().anchors);  // uncached: its first call
  const at::Tensor a =
      gen.anchors({batch.images.size(2), batch.images.size(3)}, sizes, batch.images.device());
  lap("anchors");
  const auto dets =
      infer::postprocess(h.cls_logits, h.box_deltas, a, gen.num_anchors_per_level(sizes),
                         {{{batch.image_sizes[0][0], batch.image_sizes[0][1]}, batch.scales[0]}},
                         detector.options().postprocess);
  lap("postprocess");
  std::printf("stages (ms):");
  for (const auto& [name, v] : ms) std::printf(" %s %.1f,", name, v);
  std::printf(" %lld detections\n", static_cast<long long>(dets[0].scores.size(0)));
}

void write_dets(const std::string& path, const infer::Detections& d) {
  std::ofstream out(path);
  const auto boxes = d.boxes.contiguous();
  const auto scores = d.scores.contiguous();
  const auto labels = d.labels.contiguous();
  for (int64_t i = 0; i < scores.size(0); ++i) {
    const float* b = boxes.data_ptr<float>() + 4 * i;
    char line[160];
    std::snprintf(line, sizeof line, "%lld %.7g %.7g %.7g %.7g %.7g\n",
                  static_cast<long long>(labels.data_ptr<int64_t>()[i]),
                  scores.data_ptr<float>()[i], b[0], b[1], b[2], b[3]);
    out << line;
  }
}

}  // namespace

int main(int argc, char** argv) {
  focaldet::keep_freed_memory();  // as focaldet's main does
  const Args a = parse(argc, argv);
  at::set_num_threads(a.threads);
  train::DetectorOptions o;
  o.model.head.num_classes = a.classes;
  o.postprocess.max_detections = a.max_detections;
  o.model.blocked_inference = !a.dense;
  o.model.head.winograd = !a.no_winograd;
  train::Detector detector(o);
  model::load_weights(*detector.model(), a.weights);
  detector.model()->eval();
  const cv::Mat bgr = cv::imread(a.image, cv::IMREAD_COLOR);
  if (bgr.empty()) {
    std::cerr << a.image << ": cannot read\n";
    return 2;
  }
  const data::TransformOptions t = transform_options(a);

  std::vector<infer::Detections> dets;
  for (int i = 0; i < a.warm; ++i) dets = infer_once(detector, bgr, t);
  std::vector<double> runs;
  for (int i = 0; i < a.reps; ++i) {
    const auto t0 = Clock::now();
    dets = infer_once(detector, bgr, t);
    runs.push_back(seconds_since(t0));
    std::printf("run %d: %.3f s, %lld detections\n", i + 1, runs.back(),
                static_cast<long long>(dets[0].scores.size(0)));
  }
  if (!a.dets.empty()) write_dets(a.dets, dets[0]);
  if (a.stages) print_stages(detector, bgr, t);
  if (!a.trace.empty()) {
    torch::autograd::profiler::RecordProfile guard(a.trace);
    infer_once(detector, bgr, t);
  }
  std::vector<double> sorted = runs;
  std::sort(sorted.begin(), sorted.end());
  const size_t n = sorted.size();
  const double median = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
  std::printf("median_img_per_s=%.4f\n", 1.0 / median);
  return 0;
}
