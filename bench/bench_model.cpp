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

#include "model/gemm_winograd.h"
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

// One 3x3 stride-1 conv, direct (at::conv2d: oneDNN's direct kernel on this CPU) against the
// GEMM Winograd path (model::gemm_winograd), forward or forward + backward (d/dx, d/dw, d/db),
// at 1 and 2 threads, on shapes of the head, backbone and FPN (N, C = O, H, W):
//   build/bench/focaldet_bench --benchmark_filter=Conv3x3 --benchmark_repetitions=3
constexpr int64_t kConvShapes[][4] = {{1, 256, 60, 80}, {1, 256, 30, 40}, {1, 256, 15, 20},
                                      {1, 512, 15, 20}, {1, 128, 60, 80}, {1, 64, 120, 160},
                                      {8, 128, 40, 54}, {8, 256, 10, 14}, {8, 512, 5, 7}};

void BM_Conv3x3(benchmark::State& state) {
  at::set_num_threads(static_cast<int>(state.range(3)));
  const bool winograd = state.range(0) == 1, backward = state.range(1) == 1;
  const auto& s = kConvShapes[state.range(2)];
  torch::manual_seed(0);
  const at::Tensor x = torch::randn({s[0], s[1], s[2], s[3]}).requires_grad_(backward);
  const at::Tensor w = (torch::randn({s[1], s[1], 3, 3}) * 0.02).requires_grad_(backward);
  const at::Tensor b = torch::randn({s[1]}).requires_grad_(backward);
  const at::Tensor u = focaldet::model::gemm_winograd::transform_weight(w.detach());
  auto run = [&] {
    if (!backward) {
      torch::NoGradGuard no_grad;
      return winograd ? focaldet::model::gemm_winograd::forward(x, u, b)
                      : at::conv2d(x, w, b, 1, 1);
    }
    at::Tensor y =
        winograd ? focaldet::model::gemm_winograd::conv2d(x, w, b) : at::conv2d(x, w, b, 1, 1);
    y.backward(torch::ones_like(y));
    return y;
  };
  run();
  for (auto _ : state) benchmark::DoNotOptimize(run());
  state.SetLabel(std::string(winograd ? "gemm_winograd" : "direct") +
                 (backward ? " fwd+bwd " : " fwd ") + std::to_string(s[0]) + "x" +
                 std::to_string(s[1]) + "x" + std::to_string(s[2]) + "x" + std::to_string(s[3]) +
                 " threads " + std::to_string(state.range(3)));
}

BENCHMARK(BM_Conv3x3)
    ->ArgsProduct({{0, 1}, {0, 1}, benchmark::CreateDenseRange(0, 8, 1), {1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
