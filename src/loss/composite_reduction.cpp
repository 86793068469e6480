#include "loss/composite_reduction.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <algorithm>

#include "common/targets.h"

namespace focaldet::loss::detail {

torch::Tensor reduce_with_breakdown(const torch::Tensor& loss, const torch::Tensor& targets,
                                    const torch::Tensor& all_below_easy, double elements,
                                    Reduction reduction, LossBreakdown* breakdown) {
  // Mean over no element at all (every anchor ignored) is 0, not NaN.
  const double divisor = reduction == Reduction::Mean ? std::max(elements, 1.0) : 1.0;
  if (breakdown != nullptr) {
    torch::NoGradGuard no_grad;
    const auto row = (loss.dim() == 2 ? loss.detach().sum(1) : loss.detach()).to(torch::kDouble);
    const auto positive = targets.ge(0);
    const auto negative = targets.eq(kBackground);
    const auto easy = negative & all_below_easy;
    const auto hard = negative & ~all_below_easy;
    breakdown->loss_pos = (row * positive).sum().item<double>() / divisor;
    breakdown->loss_neg_easy = (row * easy).sum().item<double>() / divisor;
    breakdown->loss_neg_hard = (row * hard).sum().item<double>() / divisor;
    breakdown->num_pos = positive.sum().item<int64_t>();
    breakdown->num_neg_easy = easy.sum().item<int64_t>();
    breakdown->num_neg_hard = hard.sum().item<int64_t>();
    breakdown->num_ignored = targets.eq(kIgnore).sum().item<int64_t>();
  }
  switch (reduction) {
    case Reduction::None:
      return loss;
    case Reduction::Sum:
      return loss.sum();
    case Reduction::Mean:
      return loss.sum() / divisor;
  }
  return loss.sum();
}

}  // namespace focaldet::loss::detail
