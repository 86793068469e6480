// read_coco on the COCO-val-sized ground truth of scripts/make_big_eval.py
// (5,000 images, 35,297 boxes, 80 non-contiguous categories; pycocotools needs 3.7 s to load it
// together with the 500,000 detections) and on BCCD's train split.
//   build-coco/bench/focaldet_bench --benchmark_filter='ReadCoco'
// The fixture is written on first use to $FOCALDET_BIG_EVAL_DIR (default /tmp/focaldet_big_eval).
// Each benchmark reports the peak resident memory one read adds to the process (parse_peak_MB).
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "data/coco_dataset.h"

namespace {

namespace fs = std::filesystem;

// The repository root, from this file's path (bench/bench_data.cpp).
fs::path source_root() { return fs::path(FOCALDET_SOURCE_DIR); }

// big_gt.json, written by make_big_eval.py when absent; empty when that fails.
std::string big_gt_path() {
  const char* env = std::getenv("FOCALDET_BIG_EVAL_DIR");
  const fs::path dir = env != nullptr ? env : "/tmp/focaldet_big_eval";
  const fs::path gt = dir / "big_gt.json";
  if (!fs::exists(gt)) {
    const fs::path script = source_root() / "scripts/make_big_eval.py";
    const std::string cmd = "/usr/bin/python3 '" + script.string() + "' '" + dir.string() + "'";
    if (std::system(cmd.c_str()) != 0 || !fs::exists(gt)) return {};
  }
  return gt.string();
}

// A "VmRSS:"/"VmHWM:" line of /proc/self/status, in MiB.
double proc_status_mb(const char* key) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(key, 0) == 0) return std::stod(line.substr(std::strlen(key))) / 1024.0;
  }
  return 0;
}

// Resets the peak resident set size (VmHWM) to the current one (Linux >= 4.0), so that the peak
// read afterwards belongs to what ran in between, not to LibTorch's start-up.
void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

void run_read_coco(benchmark::State& state, const std::string& path, bool sanitize_boxes) {
  if (path.empty()) {
    state.SkipWithError("no fixture: run python3 scripts/make_big_eval.py DIR");
    return;
  }
  focaldet::data::CocoReadOptions options;
  options.sanitize_boxes = sanitize_boxes;
  std::size_t boxes = 0;
  malloc_trim(0);  // give back what earlier runs freed, so it does not count as before
  const double rss_before = proc_status_mb("VmRSS:");
  reset_peak_rss();
  for (auto _ : state) {
    const focaldet::data::CocoDataset ds = focaldet::data::read_coco(path, options);
    boxes = ds.annotations.size();
    benchmark::DoNotOptimize(ds.annotations.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * fs::file_size(path)));
  state.counters["boxes"] = static_cast<double>(boxes);
  // Peak memory of one read (the dataset is freed between iterations): the json text, simdjson's
  // tape and the structs.
  state.counters["parse_peak_MB"] = proc_status_mb("VmHWM:") - rss_before;
}

// Arg: 0 evaluation mode (boxes as written), 1 training mode (clip and drop).
void BM_ReadCocoBigGt(benchmark::State& state) {
  run_read_coco(state, big_gt_path(), state.range(0) != 0);
}
BENCHMARK(BM_ReadCocoBigGt)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

void BM_ReadCocoBccdTrain(benchmark::State& state) {
  run_read_coco(state, (source_root() / "data/bccd/coco/instances_train.json").string(), true);
}
BENCHMARK(BM_ReadCocoBccdTrain)->Unit(benchmark::kMillisecond);

}  // namespace
