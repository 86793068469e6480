#pragma once
// Data-parallel gradient averaging, as DDP does it: the parameters' gradients are packed into
// buckets of about `bucket_mb` (in reverse parameter order, the order backward produces them),
// each bucket is summed across ranks with one asynchronous all-reduce over a buffer allocated
// once, divided by the world size, and copied back into the gradients.
//
// Overlap (the default): a post-hook on each parameter's gradient accumulator (the AccumulateGrad
// node, the hook DDP uses) copies the gradient into its bucket as soon as backward has
// accumulated it, and a bucket's all-reduce starts as soon as all its gradients are in, while
// backward goes on. Buckets start strictly in order on every rank (Gloo pairs collectives by
// order). A parameter with no gradient in a step (unused this step) leaves its bucket
// incomplete: synchronize() starts the remaining buckets after backward.
// Without overlap, synchronize() packs and reduces every bucket after backward.
//
// Per step:
//   optimizer.zero_grad();  loss.backward();  reducer.synchronize();  optimizer.step();
// In overlap mode every backward must be followed by synchronize() before the next backward
// (gradient accumulation over several backwards: overlap = false).
//
// After synchronize() every parameter's grad is the mean over ranks of that rank's grad (as it
// stood after backward, whatever it held before); a parameter without a gradient on any rank
// keeps an undefined grad. World size 1: nothing is registered; synchronize() does nothing.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace focaldet::dist {

class Distributed;

struct GradientReducerOptions {
  double bucket_mb = 25;  // DDP's bucket_cap_mb; a tensor larger than this gets a bucket alone
  bool overlap = true;    // start buckets during backward (hooks); false: all after backward
};

class GradientReducer {
 public:
  // `parameters`: the same list in the same order on every rank; those that do not require
  // grad (frozen) are left out. Must be built after the model's final parameters exist (after
  // loading a checkpoint), and `dist` must outlive it.
  GradientReducer(Distributed& dist, const std::vector<at::Tensor>& parameters,
                  const GradientReducerOptions& options = {});
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // After backward: every gradient becomes the mean over ranks. Throws focaldet::Error when a
  // rank fails (see Distributed) or when a gradient was produced twice since the last call.
  void synchronize();

  int num_buckets() const;
  // Elements per bucket, in launch order.
  std::vector<int64_t> bucket_sizes() const;
  // Buckets whose all-reduce started during the last backward (overlap mode), for benchmarks.
  int buckets_started_in_backward() const;

  struct State;  // the buckets and hooks (gradient_reducer.cpp)

 private:
  Distributed& dist_;
  std::shared_ptr<State> state_;
};

}  // namespace focaldet::dist
