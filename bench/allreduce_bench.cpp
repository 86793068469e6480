// focaldet_allreduce_bench: what data-parallel training pays for its gradient all-reduce over
// Gloo (2 ranks on this machine, TCP on loopback), and how much of it overlap hides.
//   1. The all-reduce of a 36 M-float gradient (R50-FPN's size) cut into buckets of 1, 5, 25,
//      100 MB and one bucket: every bucket started asynchronously, then all waited for.
//   2. RetinaNet R50-FPN (torchvision's layout: layer2..4 trained, 91 classes) on one image:
//      backward alone, backward then GradientReducer::synchronize (simple), and backward with
//      the reducer's hooks starting buckets during backward (overlap), per bucket size.
// Medians over --reps repetitions after one warm-up; the variants take turns within each
// repetition and both ranks start each together (barrier). A plain program, not Google
// Benchmark: it needs two processes.
//   build/bench/focaldet_allreduce_bench [--reps 7] [--image 320] [--threads 1] [--no-model]
// Started without RANK in its environment it launches its own 2 ranks (launch_local_workers).
#include <ATen/Parallel.h>
#include <torch/types.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/malloc_settings.h"
#include "dist/distributed.h"
#include "dist/gradient_reducer.h"
#include "dist/launcher.h"
#include "model/retinanet.h"

namespace {

using focaldet::dist::Distributed;
using focaldet::dist::GradientReducer;
using Clock = std::chrono::steady_clock;

constexpr int64_t kGradientFloats = 36'000'000;  // R50-FPN's gradient, rounded

struct Args {
  int reps = 7;
  int image = 320;
  int threads = 1;  // per rank: two ranks share this machine's cores
  bool model = true;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&] { return i + 1 < argc ? std::atoi(argv[++i]) : 0; };
    if (arg == "--reps") {
      a.reps = std::max(1, value());
    } else if (arg == "--image") {
      a.image = std::max(64, value());
    } else if (arg == "--threads") {
      a.threads = std::max(1, value());
    } else if (arg == "--no-model") {
      a.model = false;
    } else {
      std::fprintf(stderr, "unknown argument %s\n", arg.c_str());
      std::exit(2);
    }
  }
  return a;
}

double seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string load_average() {
  std::ifstream f("/proc/loadavg");
  std::string one, five, fifteen;
  f >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

// 1. Raw all-reduce by bucket size. The sizes take turns within each repetition, so that the
// load of a shared machine drifts over all of them alike.
void bench_all_reduce(Distributed& d, const Args& a) {
  const int64_t total_bytes = kGradientFloats * 4;
  const std::vector<double> sizes_mb{1.0, 5.0, 25.0, 100.0, 0.0};  // 0: one bucket
  std::vector<std::vector<torch::Tensor>> buckets(sizes_mb.size());
  for (std::size_t k = 0; k < sizes_mb.size(); ++k) {
    const int64_t bucket_floats =
        sizes_mb[k] > 0 ? static_cast<int64_t>(sizes_mb[k] * 1048576 / 4) : kGradientFloats;
    for (int64_t start = 0; start < kGradientFloats; start += bucket_floats) {
      buckets[k].push_back(torch::zeros({std::min(bucket_floats, kGradientFloats - start)}));
    }
  }
  std::vector<std::vector<double>> times(sizes_mb.size());
  for (int rep = 0; rep <= a.reps; ++rep) {  // rep 0 warms up
    for (std::size_t k = 0; k < sizes_mb.size(); ++k) {
      d.barrier();
      const Clock::time_point t0 = Clock::now();
      std::vector<focaldet::dist::PendingCollective> pending;
      for (const torch::Tensor& b : buckets[k]) {
        pending.push_back(d.all_reduce_sum_async(b, "bench"));
      }
      for (auto& p : pending) p.wait();
      if (rep > 0) times[k].push_back(seconds(t0, Clock::now()));
    }
  }
  if (!d.is_main()) return;
  std::printf(
      "\n1. all-reduce of %.1f M floats (%.1f MiB), 2 ranks, Gloo on loopback; median "
      "(and min) of %d\n",
      kGradientFloats / 1e6, total_bytes / 1048576.0, a.reps);
  std::printf("| bucket | buckets | time (s) | min (s) | algbw (GB/s) |\n");
  std::printf("|---|---|---|---|---|\n");
  for (std::size_t k = 0; k < sizes_mb.size(); ++k) {
    const double t = median(times[k]);
    char name[32];
    std::snprintf(name, sizeof name, sizes_mb[k] > 0 ? "%.0f MB" : "one (%.0f MB)",
                  sizes_mb[k] > 0 ? sizes_mb[k] : total_bytes / 1048576.0);
    std::printf("| %s | %zu | %.3f | %.3f | %.2f |\n", name, buckets[k].size(), t,
                *std::min_element(times[k].begin(), times[k].end()), total_bytes / t / 1e9);
  }
}

// 2. Backward of R50-FPN with and without the reducer, simple and overlapped. The modes take
// turns within each repetition (a reducer is built for its turn and dropped after, so only
// one set of hooks is ever registered); a mode's cost is its time minus the no-reduction
// time of the same repetition.
void bench_model(Distributed& d, const Args& a) {
  torch::manual_seed(0);
  focaldet::model::RetinaNetOptions options;
  options.head.num_classes = 91;
  focaldet::model::RetinaNet net(options);
  net->train();
  std::vector<torch::Tensor> params;
  int64_t floats = 0;
  for (const torch::Tensor& p : net->parameters()) {
    if (!p.requires_grad()) continue;
    params.push_back(p);
    floats += p.numel();
  }
  torch::manual_seed(1 + d.rank());
  const torch::Tensor image = torch::randn({1, 3, a.image, a.image});
  struct Mode {
    const char* name;
    double mb;  // 0: no reducer
    bool overlap;
    std::vector<double> backward, reduce, total, cost;
    int buckets = 0, started = 0;
  };
  std::vector<Mode> modes{{"no reduction", 0, false}, {"simple", 25, false}, {"overlap", 25, true},
                          {"simple", 5, false},       {"overlap", 5, true},  {"simple", 1, false},
                          {"overlap", 1, true}};
  for (int rep = 0; rep <= a.reps; ++rep) {  // rep 0 warms up
    double baseline = 0;
    for (Mode& m : modes) {
      std::unique_ptr<GradientReducer> reducer;
      if (m.mb > 0) {
        reducer = std::make_unique<GradientReducer>(
            d, params, focaldet::dist::GradientReducerOptions{m.mb, m.overlap});
      }
      for (torch::Tensor& p : params) {
        if (p.grad().defined()) p.mutable_grad().zero_();
      }
      const auto out = net->forward(image);
      const torch::Tensor loss = out.cls_logits.pow(2).mean() + out.box_deltas.pow(2).mean();
      d.barrier();
      const Clock::time_point t0 = Clock::now();
      loss.backward();
      const Clock::time_point t1 = Clock::now();
      if (reducer) reducer->synchronize();
      const Clock::time_point t2 = Clock::now();
      if (!reducer) baseline = seconds(t0, t2);
      if (rep == 0) continue;
      m.backward.push_back(seconds(t0, t1));
      m.reduce.push_back(seconds(t1, t2));
      m.total.push_back(seconds(t0, t2));
      m.cost.push_back(seconds(t0, t2) - baseline);
      if (reducer) {
        m.buckets = reducer->num_buckets();
        m.started = reducer->buckets_started_in_backward();
      }
    }
  }
  if (!d.is_main()) return;
  std::printf(
      "\n2. RetinaNet R50-FPN backward, 1 image %dx%d, %zu trained tensors = %.1f M "
      "floats, %d thread(s) per rank; median of %d (seconds); cost: minus the "
      "no-reduction time of the same repetition\n",
      a.image, a.image, params.size(), floats / 1e6, a.threads, a.reps);
  std::printf(
      "| mode | bucket | buckets | started in backward | backward | reduce after "
      "backward | backward + reduce | cost of reducing |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  for (const Mode& m : modes) {
    char bucket[16] = "-", count[16] = "-", in_backward[16] = "-";
    if (m.mb > 0) {
      std::snprintf(bucket, sizeof bucket, "%.0f MB", m.mb);
      std::snprintf(count, sizeof count, "%d", m.buckets);
      std::snprintf(in_backward, sizeof in_backward, "%d", m.started);
    }
    std::printf("| %s | %s | %s | %s | %.3f | %.3f | %.3f | %+.3f |\n", m.name, bucket, count,
                in_backward, median(m.backward), median(m.reduce), median(m.total), median(m.cost));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (std::getenv("RANK") == nullptr) {
    std::vector<std::string> args(argv, argv + argc);
    return focaldet::dist::launch_local_workers(2, args);
  }
  focaldet::keep_freed_memory();  // as focaldet's main() does
  const Args a = parse(argc, argv);
  at::set_num_threads(a.threads);
  Distributed d(focaldet::dist::read_dist_env(), {/*timeout_seconds=*/600});
  if (d.is_main()) {
    std::printf(
        "focaldet_allreduce_bench: %d ranks, %d thread(s) each, load average at start %s"
        " (%u CPUs)\n",
        d.world_size(), a.threads, load_average().c_str(), std::thread::hardware_concurrency());
  }
  bench_all_reduce(d, a);
  if (a.model) bench_model(d, a);
  d.barrier();
  if (d.is_main()) std::printf("\nload average at the end %s\n", load_average().c_str());
  return 0;
}
