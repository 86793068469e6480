// focaldet_allreduce_bench: what data-parallel training pays for its gradient all-reduce over
// Gloo (2 ranks on this machine, TCP on loopback), and how much of it overlap hides.
//   1. The all-reduce of a 36 M-float gradient (R50-FPN's size) cut into buckets of 1, 5, 25,
//      100 MB and one bucket: every bucket started asynchronously, then all waited for.
//   2. RetinaNet R50-FPN (torchvision's layout: layer2..4 trained, 91 classes) on one image:
//      backward alone, backward then GradientReducer::synchronize (simple), and backward with
//      the reducer's hooks starting buckets during backward (overlap), per bucket size.
// Medians over --reps repetitions after one warm-up; both ranks start each repetition together
// (barrier). A plain program, not Google Benchmark: it needs two processes.
//   build/bench/focaldet_allreduce_bench [--reps 7] [--image 320] [--threads 1] [--no-model]
// Started without RANK in its environment it launches its own 2 ranks (launch_local_workers).
#include <ATen/Parallel.h>
#include <torch/types.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

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

// 1. Raw all-reduce by bucket size.
void bench_all_reduce(Distributed& d, const Args& a) {
  const int64_t total_bytes = kGradientFloats * 4;
  if (d.is_main()) {
    std::printf(
        "\n1. all-reduce of %.1f M floats (%.1f MiB), 2 ranks, Gloo on loopback; median "
        "of %d\n",
        kGradientFloats / 1e6, total_bytes / 1048576.0, a.reps);
    std::printf("| bucket | buckets | time (s) | min (s) | algbw (GB/s) |\n");
    std::printf("|---|---|---|---|---|\n");
  }
  for (const double mb : {1.0, 5.0, 25.0, 100.0, 0.0}) {
    const int64_t bucket_floats = mb > 0 ? static_cast<int64_t>(mb * 1048576 / 4) : kGradientFloats;
    std::vector<torch::Tensor> buckets;
    for (int64_t start = 0; start < kGradientFloats; start += bucket_floats) {
      buckets.push_back(torch::ones({std::min(bucket_floats, kGradientFloats - start)}));
    }
    std::vector<double> times;
    for (int rep = 0; rep <= a.reps; ++rep) {
      d.barrier();
      const Clock::time_point t0 = Clock::now();
      std::vector<focaldet::dist::PendingCollective> pending;
      for (const torch::Tensor& b : buckets) pending.push_back(d.all_reduce_sum_async(b, "bench"));
      for (auto& p : pending) p.wait();
      if (rep > 0) times.push_back(seconds(t0, Clock::now()));  // rep 0 warms up
    }
    if (d.is_main()) {
      const double t = median(times);
      char name[32];
      std::snprintf(name, sizeof name, mb > 0 ? "%.0f MB" : "one (%.0f MB)",
                    mb > 0 ? mb : total_bytes / 1048576.0);
      std::printf("| %s | %zu | %.3f | %.3f | %.2f |\n", name, buckets.size(), t,
                  *std::min_element(times.begin(), times.end()), total_bytes / t / 1e9);
    }
  }
}

// 2. Backward of R50-FPN with and without the reducer, simple and overlapped.
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
  if (d.is_main()) {
    std::printf(
        "\n2. RetinaNet R50-FPN backward, 1 image %dx%d, %zu trained tensors = %.1f M "
        "floats, %d thread(s) per rank; median of %d (seconds)\n",
        a.image, a.image, params.size(), floats / 1e6, a.threads, a.reps);
    std::printf(
        "| mode | bucket | buckets | started in backward | backward | reduce after "
        "backward | backward + reduce | reduce cost |\n");
    std::printf("|---|---|---|---|---|---|---|---|\n");
  }
  double baseline = 0;
  struct Config {
    const char* mode;
    double mb;  // 0: no reducer
    bool overlap;
  };
  for (const Config& c :
       {Config{"no reduction", 0, false}, Config{"simple", 25, false}, Config{"overlap", 25, true},
        Config{"simple", 5, false}, Config{"overlap", 5, true}, Config{"overlap", 1, true}}) {
    std::unique_ptr<GradientReducer> reducer;
    if (c.mb > 0)
      reducer = std::make_unique<GradientReducer>(
          d, params, focaldet::dist::GradientReducerOptions{c.mb, c.overlap});
    std::vector<double> backward, reduce, total;
    int started = 0;
    for (int rep = 0; rep <= a.reps; ++rep) {
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
      if (rep == 0) continue;
      backward.push_back(seconds(t0, t1));
      reduce.push_back(seconds(t1, t2));
      total.push_back(seconds(t0, t2));
      if (reducer) started = reducer->buckets_started_in_backward();
    }
    const double t = median(total);
    if (c.mb == 0) baseline = t;
    if (d.is_main()) {
      char bucket[16] = "-", count[16] = "-", in_backward[16] = "-";
      if (reducer) {
        std::snprintf(bucket, sizeof bucket, "%.0f MB", c.mb);
        std::snprintf(count, sizeof count, "%d", reducer->num_buckets());
        std::snprintf(in_backward, sizeof in_backward, "%d", started);
      }
      std::printf("| %s | %s | %s | %s | %.3f | %.3f | %.3f | %+.3f |\n", c.mode, bucket, count,
                  in_backward, median(backward), median(reduce), t, t - baseline);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (std::getenv("RANK") == nullptr) {
    std::vector<std::string> args(argv, argv + argc);
    return focaldet::dist::launch_local_workers(2, args);
  }
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
  return 0;
}
