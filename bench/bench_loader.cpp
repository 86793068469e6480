// Loader throughput on BCCD (data/bccd, 640x480 JPEGs): decode, resize, flip, normalise and pad,
// exactly what the trainer receives. Run with, e.g.
//   build-loader/bench/focaldet_bench --benchmark_filter=Loader
// The figure in docs/benchmarks.md is img_per_s of BM_LoaderBccd/threads:2/batch:4/short:384.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <memory>
#include <opencv2/core/utility.hpp>
#include <opencv2/imgcodecs.hpp>
#include <vector>

#include "data/coco_dataset.h"
#include "data/collate.h"
#include "data/loader.h"

namespace {

namespace fs = std::filesystem;
using focaldet::data::CocoDataset;

const fs::path kBccd = fs::path(FOCALDET_SOURCE_DIR) / "data" / "bccd";

std::shared_ptr<const CocoDataset> bccd_trainval() {
  static const auto ds = std::make_shared<const CocoDataset>(
      focaldet::data::read_coco((kBccd / "coco" / "instances_trainval.json").string()));
  return ds;
}

// Whole epochs of trainval (292 images), one per iteration, threads started per epoch as in
// training: the rate includes the epoch-boundary refill.
void BM_LoaderBccd(benchmark::State& state) {
  focaldet::data::LoaderOptions o;
  o.image_root = (kBccd / "JPEGImages").string();
  o.num_workers = static_cast<int>(state.range(0));
  o.sampler.batch_size = state.range(1);
  o.transform.shorter_sides = {static_cast<int>(state.range(2))};
  o.transform.flip_prob = 0.5;
  focaldet::data::Loader loader(bccd_trainval(), o);
  int64_t epoch = 0, images = 0;
  for (auto _ : state) {
    loader.start_epoch(epoch++);
    while (auto batch = loader.next()) {
      images += batch->size();
      benchmark::DoNotOptimize(batch->images.data_ptr());
    }
  }
  state.SetItemsProcessed(images);
  state.counters["img_per_s"] =
      benchmark::Counter(static_cast<double>(images), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_LoaderBccd)
    ->ArgNames({"threads", "batch", "short"})
    ->Args({2, 4, 384})
    ->Args({1, 4, 384})
    ->Args({2, 4, 800})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(5.0);

// One image at a time on one thread, split into its stages, to show where the time goes.
void BM_LoaderStagesBccd(benchmark::State& state) {
  cv::setNumThreads(1);
  const auto ds = bccd_trainval();
  const int stage = static_cast<int>(state.range(0));  // 0 decode, 1 + resize, 2 + normalise
  focaldet::data::TransformOptions opt;
  opt.shorter_sides = {static_cast<int>(state.range(1))};
  const auto size = focaldet::data::resized_size(640, 480, opt.shorter_sides[0], opt.max_size);
  const int height = (size.height + 127) / 128 * 128, width = (size.width + 127) / 128 * 128;
  std::vector<float> out(3 * static_cast<size_t>(height) * width);
  size_t i = 0;
  for (auto _ : state) {
    const auto& im = ds->images[i++ % ds->images.size()];
    cv::Mat bgr = cv::imread((kBccd / "JPEGImages" / im.file_name).string(), cv::IMREAD_COLOR);
    if (stage >= 1) {
      focaldet::data::TransformParams p;
      p.shorter_side = opt.shorter_sides[0];
      p.flip = (i % 2) != 0;
      const auto t = focaldet::data::transform_image(bgr, p, opt, {}, {}, {});
      if (stage >= 2) focaldet::data::write_normalized(t, opt, out.data(), height, width);
    }
    benchmark::DoNotOptimize(bgr.data);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LoaderStagesBccd)
    ->ArgNames({"stage", "short"})
    ->ArgsProduct({{0, 1, 2}, {384, 800}})
    ->Unit(benchmark::kMillisecond);

}  // namespace
