// Fused sigmoid focal loss: loss and gradient in one pass over the logits.
//
// For one logit x of an anchor whose target class is t, with s = +1 if this class is t and -1
// otherwise, z = s x and p_t = sigmoid(z):
//   loss       = -alpha_t (1 - p_t)^gamma log(p_t)
//   dloss/dz   =  alpha_t (1 - p_t)^gamma (gamma p_t log(p_t) - (1 - p_t))
//   dloss/dx   =  s dloss/dz
// computed from e = exp(-|z|) only: log(p_t) = -(max(-z, 0) + log1p(e)), and p_t, 1 - p_t are
// 1/(1+e) and e/(1+e) in the order the sign of z gives. No term overflows for any finite x.
#include "loss/sigmoid_focal_kernel.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/targets.h"
#include "loss/fast_math.h"

namespace focaldet::loss::detail {
namespace {

constexpr int kGammaZero = 0, kGammaTwo = 2, kGammaAny = -1;

// Enough elements per task that threading pays for itself.
int64_t grain_rows(int64_t classes) {
  return std::max<int64_t>(1, 16384 / std::max<int64_t>(classes, 1));
}

inline void add(FocalSums& a, const FocalSums& b) {
  a.loss += b.loss;
  a.pos += b.pos;
  a.neg_hard += b.neg_hard;
  a.neg_easy += b.neg_easy;
  a.num_pos += b.num_pos;
  a.num_neg_hard += b.num_neg_hard;
  a.num_neg_easy += b.num_neg_easy;
  a.num_ignored += b.num_ignored;
}

// The kernel arguments in the element type, loaded once per task.
template <typename T>
struct Constants {
  explicit Constants(const FocalKernelArgs& a)
      : a_pos(static_cast<T>(a.alpha_pos)),
        a_neg(static_cast<T>(a.alpha_neg)),
        gamma(static_cast<T>(a.gamma)),
        easy_logit(static_cast<T>(a.easy_logit)),
        floor(static_cast<T>(a.exp_floor)) {}
  T a_pos, a_neg, gamma, easy_logit, floor;
};

// One element: its loss, and its gradient when kWriteGrad. Inlined into the loops below.
template <typename T, int kGamma, bool kWriteGrad>
inline T focal_element(T xc, bool positive, T a_pos, T a_neg, T gamma, T floor, T* grad) {
  const T z = positive ? xc : -xc;
  const T e = exp_nonpositive(-std::abs(z), floor);
  const T l1p = log1p_unit(e);
  const T log_pt = -(std::max(-z, T(0)) + l1p);
  const T inv = T(1) / (T(1) + e);
  const T q = z >= T(0) ? e * inv : inv;  // 1 - p_t
  T mod;                                  // (1 - p_t)^gamma
  if constexpr (kGamma == kGammaZero) {
    mod = T(1);
  } else if constexpr (kGamma == kGammaTwo) {
    mod = q * q;
  } else {
    mod = exp_nonpositive(-gamma * (std::max(z, T(0)) + l1p), floor);
  }
  const T alpha_t = positive ? a_pos : a_neg;
  if constexpr (kWriteGrad) {
    T dz;
    if constexpr (kGamma == kGammaZero) {
      dz = -alpha_t * q;
    } else {
      const T p_t = z >= T(0) ? inv : e * inv;
      dz = alpha_t * mod * (gamma * p_t * log_pt - q);
    }
    *grad = positive ? dz : -dz;
  }
  return -alpha_t * mod * log_pt;
}

// Adds one anchor's summed loss to the sums of its kind.
inline void add_row(FocalSums& sums, int64_t target, double row_loss, bool all_below_easy) {
  sums.loss += row_loss;
  if (target >= 0) {
    sums.pos += row_loss;
    ++sums.num_pos;
  } else if (all_below_easy) {
    sums.neg_easy += row_loss;
    ++sums.num_neg_easy;
  } else {
    sums.neg_hard += row_loss;
    ++sums.num_neg_hard;
  }
}

// Many classes (COCO's 80): vectorise along each anchor's row of logits.
template <typename T, int kGamma, bool kWriteLoss, bool kWriteGrad>
FocalSums focal_rows(const T* logits, const int64_t* targets, T* loss_out, T* grad_out,
                     const FocalKernelArgs& args, int64_t begin, int64_t end) {
  const int64_t C = args.classes;
  const Constants<T> k(args);
  FocalSums sums;
  for (int64_t i = begin; i < end; ++i) {
    const int64_t target = targets[i];
    const T* x = logits + i * C;
    T* out = kWriteLoss ? loss_out + i * C : nullptr;
    T* grad = kWriteGrad ? grad_out + i * C : nullptr;
    if (target == kIgnore) {
      if constexpr (kWriteLoss) std::fill(out, out + C, T(0));
      if constexpr (kWriteGrad) std::fill(grad, grad + C, T(0));
      ++sums.num_ignored;
      continue;
    }
    T row_loss = 0;
    T row_max = -std::numeric_limits<T>::infinity();
#pragma omp simd reduction(+ : row_loss) reduction(max : row_max)
    for (int64_t c = 0; c < C; ++c) {
      const T xc = x[c];  // loaded unconditionally so the selects inside if-convert
      const T loss = focal_element<T, kGamma, kWriteGrad>(
          xc, c == target, k.a_pos, k.a_neg, k.gamma, k.floor, kWriteGrad ? grad + c : nullptr);
      if constexpr (kWriteLoss) out[c] = loss;
      row_loss += loss;
      row_max = std::max(row_max, xc);
    }
    add_row(sums, target, row_loss, row_max < k.easy_logit);
  }
  return sums;
}

// Rows shorter than a vector (BCCD's 3 classes): vectorise over a block of rows seen as one flat
// array, with each element's "is it the target class" precomputed, then sum rows in a scalar pass.
constexpr int64_t kFlatMaxClasses = 16;
constexpr int64_t kFlatBlockRows = 256;

template <typename T, int kGamma, bool kWriteLoss, bool kWriteGrad>
FocalSums focal_flat(const T* logits, const int64_t* targets, T* loss_out, T* grad_out,
                     const FocalKernelArgs& args, int64_t begin, int64_t end) {
  const int64_t C = args.classes;
  const Constants<T> k(args);
  T positive[kFlatBlockRows * kFlatMaxClasses];
  T loss_block[kFlatBlockRows * kFlatMaxClasses];
  FocalSums sums;
  for (int64_t i0 = begin; i0 < end; i0 += kFlatBlockRows) {
    const int64_t rows = std::min(end - i0, kFlatBlockRows);
    const int64_t n = rows * C;
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < C; ++c) positive[r * C + c] = c == targets[i0 + r] ? T(1) : T(0);
    }
    const T* x = logits + i0 * C;
    T* loss = kWriteLoss ? loss_out + i0 * C : loss_block;
    T* grad = kWriteGrad ? grad_out + i0 * C : nullptr;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) {
      loss[j] =
          focal_element<T, kGamma, kWriteGrad>(x[j], positive[j] != T(0), k.a_pos, k.a_neg, k.gamma,
                                               k.floor, kWriteGrad ? grad + j : nullptr);
    }
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t target = targets[i0 + r];
      T* row = loss + r * C;
      if (target == kIgnore) {
        std::fill(row, row + C, T(0));
        if constexpr (kWriteGrad) std::fill(grad + r * C, grad + (r + 1) * C, T(0));
        ++sums.num_ignored;
        continue;
      }
      T row_loss = 0;
      T row_max = -std::numeric_limits<T>::infinity();
      for (int64_t c = 0; c < C; ++c) {
        row_loss += row[c];
        row_max = std::max(row_max, x[r * C + c]);
      }
      add_row(sums, target, row_loss, row_max < k.easy_logit);
    }
  }
  return sums;
}

template <typename T, int kGamma, bool kWriteLoss, bool kWriteGrad>
FocalSums focal_range(const T* logits, const int64_t* targets, T* loss_out, T* grad_out,
                      const FocalKernelArgs& args, int64_t begin, int64_t end) {
  if (args.classes < kFlatMaxClasses) {
    return focal_flat<T, kGamma, kWriteLoss, kWriteGrad>(logits, targets, loss_out, grad_out, args,
                                                         begin, end);
  }
  return focal_rows<T, kGamma, kWriteLoss, kWriteGrad>(logits, targets, loss_out, grad_out, args,
                                                       begin, end);
}

template <typename T, int kGamma>
FocalSums focal_dispatch(const T* logits, const int64_t* targets, T* loss_out, T* grad_out,
                         const FocalKernelArgs& args) {
  auto rows = [&](int64_t begin, int64_t end) {
    if (loss_out && grad_out)
      return focal_range<T, kGamma, true, true>(logits, targets, loss_out, grad_out, args, begin,
                                                end);
    if (loss_out)
      return focal_range<T, kGamma, true, false>(logits, targets, loss_out, nullptr, args, begin,
                                                 end);
    if (grad_out)
      return focal_range<T, kGamma, false, true>(logits, targets, nullptr, grad_out, args, begin,
                                                 end);
    return focal_range<T, kGamma, false, false>(logits, targets, nullptr, nullptr, args, begin,
                                                end);
  };
  return at::parallel_reduce(
      0, args.rows, grain_rows(args.classes), FocalSums{},
      [&](int64_t begin, int64_t end, FocalSums acc) {
        add(acc, rows(begin, end));
        return acc;
      },
      [](FocalSums a, const FocalSums& b) {
        add(a, b);
        return a;
      });
}

}  // namespace

template <typename T>
FocalSums sigmoid_focal_forward(const T* logits, const int64_t* targets, T* loss_out, T* grad_out,
                                const FocalKernelArgs& args) {
  if (args.gamma == 0)
    return focal_dispatch<T, kGammaZero>(logits, targets, loss_out, grad_out, args);
  if (args.gamma == 2)
    return focal_dispatch<T, kGammaTwo>(logits, targets, loss_out, grad_out, args);
  return focal_dispatch<T, kGammaAny>(logits, targets, loss_out, grad_out, args);
}

template FocalSums sigmoid_focal_forward<float>(const float*, const int64_t*, float*, float*,
                                                const FocalKernelArgs&);
template FocalSums sigmoid_focal_forward<double>(const double*, const int64_t*, double*, double*,
                                                 const FocalKernelArgs&);

}  // namespace focaldet::loss::detail
