#pragma once
// The fused sigmoid focal loss kernel on raw memory (no tensors), for float and double.
// sigmoid_focal.cpp wraps it in an autograd function. Kept apart so this file alone is compiled
// with -march=native and -fopenmp-simd.
#include <cstdint>

namespace focaldet::loss::detail {

struct FocalKernelArgs {
  int64_t rows = 0;      // N anchors
  int64_t classes = 0;   // C
  double alpha_pos = 1;  // alpha_t for a positive term (alpha, or 1 when alpha-balancing is off)
  double alpha_neg = 1;  // alpha_t for a negative term (1 - alpha, or 1)
  double gamma = 0;
  double easy_logit = 0;     // logit(easy_prob): a background row is easy if every logit is below
  float exp_floor = -88.0f;  // kExpFloor (fast_math.h), passed as data so loops vectorise
};

// Per-kind sums of the per-element losses (unnormalised), and counts of rows.
struct FocalSums {
  double loss = 0, pos = 0, neg_hard = 0, neg_easy = 0;
  int64_t num_pos = 0, num_neg_hard = 0, num_neg_easy = 0, num_ignored = 0;
};

// One pass over logits [rows, classes] (row-major) and targets [rows] (class, -1 background,
// -2 ignored). Writes, when the pointer is not null, per-element losses to `loss_out` and
// d(loss)/d(logit) to `grad_out` (both [rows, classes], ignored rows 0). The gradient shares
// exp/log1p with the loss, so computing it here costs a fraction of a second pass.
template <typename T>
FocalSums sigmoid_focal_forward(const T* logits, const int64_t* targets, T* loss_out, T* grad_out,
                                const FocalKernelArgs& args);

}  // namespace focaldet::loss::detail
