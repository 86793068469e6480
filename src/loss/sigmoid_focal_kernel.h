#pragma once
// The fused sigmoid focal loss kernels on raw memory (no tensors), for float and double.
// sigmoid_focal.cpp wraps them in an autograd function. Kept apart so this file alone is compiled
// with -march=native and -fopenmp-simd.
#include <cstdint>

namespace focaldet::loss::detail {

struct FocalKernelArgs {
  int64_t rows = 0;        // N anchors
  int64_t classes = 0;     // C
  double alpha_pos = 1;    // alpha_t for a positive term (alpha, or 1 when alpha-balancing is off)
  double alpha_neg = 1;    // alpha_t for a negative term (1 - alpha, or 1)
  double gamma = 0;
  double easy_logit = 0;   // logit(easy_prob): a background row is easy if every logit is below
  float exp_floor = -88.0f;  // kExpFloor (fast_math.h), passed as data so loops vectorise
};

// Per-kind sums of the per-element losses (unnormalised), and counts of rows.
struct FocalSums {
  double loss = 0, pos = 0, neg_hard = 0, neg_easy = 0;
  int64_t num_pos = 0, num_neg_hard = 0, num_neg_easy = 0, num_ignored = 0;
};

// logits [rows, classes] row-major; targets [rows]: class, -1 background, -2 ignored.
// Writes per-element losses to `loss_out` ([rows, classes], ignored rows 0) when it is not null.
template <typename T>
FocalSums sigmoid_focal_forward(const T* logits, const int64_t* targets, T* loss_out,
                                const FocalKernelArgs& args);

// grad = d(loss)/d(logits) * upstream, where upstream is `grad_scale`, times
// `grad_elementwise[i, c]` when that is not null (reduction none). Ignored rows get 0.
template <typename T>
void sigmoid_focal_backward(const T* logits, const int64_t* targets, const T* grad_elementwise,
                            T grad_scale, T* grad, const FocalKernelArgs& args);

}  // namespace focaldet::loss::detail
