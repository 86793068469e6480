// COCO evaluation on the COCO-val-sized workload of scripts/make_big_eval.py
// (5,000 images, ~35k gt boxes, 80 categories, 500,000 detections), built in memory by the same
// generator, so evaluate() and the results reader are timed apart from each other and with 1
// or 2 threads. Run with, e.g.
//   build/bench/focaldet_bench --benchmark_filter=Eval
// The end-to-end figure (the CLI, both files read) is scripts/bench_eval.sh's.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "data/coco_dataset.h"
#include "eval/coco_eval.h"
#include "eval/detection.h"
#include "eval/results_json.h"

namespace {

using focaldet::eval::Detection;

struct Workload {
  focaldet::data::CocoDataset gt;
  std::vector<Detection> dets;
};

// make_big_eval.py, step by step (same LCG, same draws in the same order).
Workload make_workload(int num_images = 5000) {
  uint64_t s = 12345;
  auto u = [&s]() {
    s = (1103515245 * s + 12345) % (uint64_t(1) << 31);
    return static_cast<double>(s) / static_cast<double>(uint64_t(1) << 31);
  };
  Workload w;
  for (int i = 0; i < 80; ++i) w.gt.categories.push_back({i + 1 + i / 10, "c" + std::to_string(i)});
  for (int i = 0; i < num_images; ++i) {
    const double W = 640, H = 480;
    w.gt.images.push_back({i + 1, std::to_string(i) + ".jpg", 640, 480});
    const int k = static_cast<int>(u() * 15);
    for (int n = 0; n < k; ++n) {
      const double rw = u();
      const double bw = 4 + rw * rw * 400;  // u() ** 2: one draw, squared
      const double rh = u();
      const double bh = 4 + rh * rh * 300;
      const double x = u() * (W - bw), y = u() * (H - bh);
      const int64_t c = w.gt.categories[static_cast<int>(u() * 80)].id;
      focaldet::data::CocoAnnotation a;
      a.id = static_cast<int64_t>(w.gt.annotations.size()) + 1;
      a.image_id = i + 1;
      a.category_id = c;
      a.x = x;
      a.y = y;
      a.w = bw;
      a.h = bh;
      a.area = bw * bh;
      a.iscrowd = u() < 0.01;
      w.gt.annotations.push_back(a);
      if (u() < 0.8) {
        Detection d;
        d.image_id = i + 1;
        d.category_id = c;
        d.x = x + (u() - .5) * bw * .2;
        d.y = y + (u() - .5) * bh * .2;
        d.w = bw * (0.9 + u() * .2);
        d.h = bh * (0.9 + u() * .2);
        d.score = u();
        w.dets.push_back(d);
      }
    }
    while (w.dets.size() < static_cast<std::size_t>(i + 1) * 100) {
      Detection d;
      d.w = 4 + u() * 300;
      d.h = 4 + u() * 300;
      d.image_id = i + 1;
      d.category_id = w.gt.categories[static_cast<int>(u() * 80)].id;
      d.x = u() * 600;
      d.y = u() * 440;
      d.score = u() * 0.7;
      w.dets.push_back(d);
    }
  }
  return w;
}

const Workload& workload() {
  static const Workload w = make_workload();
  return w;
}

// evaluate() alone: grouping, per-image matching, accumulate, summarize.
void BM_EvalCocoVal(benchmark::State& state) {
  const Workload& w = workload();
  focaldet::eval::EvalOptions options;
  options.num_threads = static_cast<int>(state.range(0));
  double ap = 0;
  for (auto _ : state) {
    ap = focaldet::eval::evaluate(w.gt, w.dets, options).stats[0];
    benchmark::DoNotOptimize(ap);
  }
  state.counters["AP"] = ap;  // 0.180102 in pycocotools
  state.counters["dets_per_s"] = benchmark::Counter(static_cast<double>(w.dets.size()),
                                                    benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_EvalCocoVal)->ArgName("threads")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond);

// read_results() of the 500,000 detections written by write_results (~75 MB of json).
void BM_EvalReadResults(benchmark::State& state) {
  static const std::string path = [] {
    const auto p = std::filesystem::temp_directory_path() / "focaldet_bench_eval_dets.json";
    focaldet::eval::write_results(p.string(), workload().dets);
    return p.string();
  }();
  const int threads = static_cast<int>(state.range(0));
  for (auto _ : state) {
    auto dets = focaldet::eval::read_results(path, threads);
    benchmark::DoNotOptimize(dets.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(std::filesystem::file_size(path)));
}
BENCHMARK(BM_EvalReadResults)->ArgName("threads")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond);

}  // namespace
