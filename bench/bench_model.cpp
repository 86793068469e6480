// RetinaNet R50-FPN (torchvision's retinanet_resnet50_fpn layout: frozen BN, layer2..4 trained,
// 91 classes, 4 x 256 head) on a batch of two 512x512 images: forward under no-grad, and forward
// + backward in training mode, the backward seeded by the sum of both head outputs (the loss
// itself is benchmarked in bench_loss.cpp). Thread count: the benchmark's argument.
// scripts/bench_model.py runs these beside torchvision's model in the same run:
//   build/bench/focaldet_bench --benchmark_filter=RetinaNet --benchmark_repetitions=5
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>
#include <torch/types.h>
#include <torch/utils.h>

#include "model/retinanet.h"

namespace {

using focaldet::model::RetinaNet;

// One model and input per process, warmed once (first-call allocations and kernel selection stay
// out of the timings, as in the Python side's warm-up).
struct Fixture {
  RetinaNet net{nullptr};
  torch::Tensor images;
};

Fixture& fixture() {
  static Fixture* f = [] {
    auto* fx = new Fixture;
    torch::manual_seed(0);
    focaldet::model::RetinaNetOptions o;
    o.head.num_classes = 91;
    fx->net = RetinaNet(o);
    fx->images = torch::randn({2, 3, 512, 512});
    return fx;
  }();
  return *f;
}

void BM_RetinaNetR50Forward(benchmark::State& state) {
  at::set_num_threads(static_cast<int>(state.range(0)));
  Fixture& f = fixture();
  f.net->eval();
  torch::NoGradGuard no_grad;
  static bool warm = false;
  if (!warm) {
    f.net->forward(f.images);
    warm = true;
  }
  for (auto _ : state) {
    auto out = f.net->forward(f.images);
    benchmark::DoNotOptimize(out.cls_logits.data_ptr());
  }
  state.SetItemsProcessed(state.iterations() * 2);
}

void BM_RetinaNetR50ForwardBackward(benchmark::State& state) {
  at::set_num_threads(static_cast<int>(state.range(0)));
  Fixture& f = fixture();
  f.net->train();
  auto step = [&] {
    f.net->zero_grad();
    auto out = f.net->forward(f.images);
    (out.cls_logits.sum() + out.box_deltas.sum()).backward();
  };
  static bool warm = false;
  if (!warm) {
    step();
    warm = true;
  }
  for (auto _ : state) step();
  state.SetItemsProcessed(state.iterations() * 2);
}

BENCHMARK(BM_RetinaNetR50Forward)
    ->Arg(2)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_RetinaNetR50ForwardBackward)
    ->Arg(2)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
