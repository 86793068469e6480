// Forward + backward of the classification loss on a RetinaNet-sized batch: two 512x512 images
// give 2 x 49,104 = 98,208 anchors (P3-P7, 9 anchors per location). Fused sigmoid focal loss
// against the same loss as composite tensor ops (torchvision.ops.sigmoid_focal_loss's formula on
// a one-hot target, built once outside the timed loop). Thread count: the benchmark's argument.
//   build/bench/focaldet_bench --benchmark_filter=Focal
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "loss/sigmoid_focal.h"

namespace {

constexpr int64_t kAnchors = 98208;

struct Inputs {
  torch::Tensor logits, targets, one_hot;
};

// Logits around a trained detector's (mostly confident background); ~1% positives, ~5% ignored.
Inputs make_inputs(int64_t classes) {
  torch::manual_seed(0);
  Inputs in;
  in.logits = (torch::randn({kAnchors, classes}) * 2.0 - 4.0).requires_grad_(true);
  auto u = torch::rand({kAnchors});
  in.targets = torch::full({kAnchors}, -1, torch::kLong);
  in.targets.masked_fill_(u < 0.05, -2);
  auto pos = u > 0.99;
  in.targets.index_put_({pos}, torch::randint(classes, {pos.sum().item<int64_t>()}, torch::kLong));
  in.one_hot = torch::zeros({kAnchors, classes});
  auto idx = (in.targets >= 0).nonzero().squeeze(1);
  in.one_hot.index_put_({idx, in.targets.index({idx})}, 1.0);
  return in;
}

// torchvision/ops/focal_loss.py, alpha 0.25, gamma 2, reduction sum; ignored rows masked out.
torch::Tensor composite_focal(const torch::Tensor& x, const torch::Tensor& t,
                              const torch::Tensor& valid) {
  auto p = torch::sigmoid(x);
  auto ce = torch::binary_cross_entropy_with_logits(x, t, {}, {}, at::Reduction::None);
  auto p_t = p * t + (1 - p) * (1 - t);
  auto loss = ce * (1 - p_t).pow(2.0);
  auto alpha_t = 0.25 * t + 0.75 * (1 - t);
  return (alpha_t * loss * valid).sum();
}

void BM_FocalFused(benchmark::State& state) {
  at::set_num_threads(static_cast<int>(state.range(1)));
  Inputs in = make_inputs(state.range(0));
  for (auto _ : state) {
    in.logits.mutable_grad() = torch::Tensor();
    auto loss = focaldet::loss::sigmoid_focal_loss(in.logits, in.targets);
    loss.backward();
    benchmark::DoNotOptimize(in.logits.grad().data_ptr<float>());
  }
  state.SetItemsProcessed(state.iterations() * in.logits.numel());
}

void BM_FocalComposite(benchmark::State& state) {
  at::set_num_threads(static_cast<int>(state.range(1)));
  Inputs in = make_inputs(state.range(0));
  auto valid = (in.targets != -2).to(torch::kFloat).unsqueeze(1);
  for (auto _ : state) {
    in.logits.mutable_grad() = torch::Tensor();
    auto loss = composite_focal(in.logits, in.one_hot, valid);
    loss.backward();
    benchmark::DoNotOptimize(in.logits.grad().data_ptr<float>());
  }
  state.SetItemsProcessed(state.iterations() * in.logits.numel());
}

}  // namespace

// Args: {classes, threads}. 80 = COCO, 3 = BCCD.
BENCHMARK(BM_FocalFused)
    ->Args({80, 2})
    ->Args({3, 2})
    ->Args({80, 1})
    ->Args({3, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_FocalComposite)
    ->Args({80, 2})
    ->Args({3, 2})
    ->Args({80, 1})
    ->Args({3, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_FocalFusedForwardOnly(benchmark::State& state) {
  at::set_num_threads(static_cast<int>(state.range(1)));
  Inputs in = make_inputs(state.range(0));
  torch::NoGradGuard no_grad;
  for (auto _ : state) {
    auto loss = focaldet::loss::sigmoid_focal_loss(in.logits, in.targets);
    benchmark::DoNotOptimize(loss.data_ptr<float>());
  }
  state.SetItemsProcessed(state.iterations() * in.logits.numel());
}
BENCHMARK(BM_FocalFusedForwardOnly)->Args({80, 2})->Args({80, 1})->Unit(benchmark::kMillisecond)->UseRealTime();
