#include "loss/softmax_focal.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <cmath>

#include "common/error.h"

namespace focaldet::loss {

torch::Tensor softmax_focal_loss(const torch::Tensor& logits, const torch::Tensor& targets,
                                 const FocalOptions& options, LossBreakdown* breakdown) {
  check_focal_options(options.alpha, options.gamma, options.easy_prob);
  check(logits.dim() == 2 && logits.size(1) >= 2,
        "softmax_focal_loss: logits must be [N, C+1] with a background column, C >= 1");
  const int64_t classes = logits.size(1) - 1;
  check_loss_inputs(logits, targets, classes, "softmax_focal_loss");

  const auto valid = targets.ne(-2);
  const auto positive = targets.ge(0);
  // Background is column C; ignored rows point at column 0 and are masked out below.
  const auto column =
      torch::where(targets.eq(-1), torch::full_like(targets, classes), targets.clamp_min(0));
  const auto log_p = at::log_softmax(logits, 1);
  const auto log_pt = log_p.gather(1, column.unsqueeze(1)).squeeze(1);
  auto loss = -log_pt;
  if (options.gamma != 0) {
    // clamp: 1 - exp(log_pt) can round below 0 when p_t rounds to 1.
    loss = loss * (1 - log_pt.exp()).clamp_min(0).pow(options.gamma);
  }
  if (options.alpha >= 0) {
    loss = loss * torch::where(positive, torch::full_like(loss, options.alpha),
                               torch::full_like(loss, 1 - options.alpha));
  }
  loss = loss * valid.to(loss.scalar_type());

  const double count = std::max<double>(1.0, valid.sum().item<double>());
  const double divisor = options.reduction == Reduction::Mean ? count : 1.0;
  if (breakdown != nullptr) {
    torch::NoGradGuard no_grad;
    const auto max_fg_log_p = std::get<0>(log_p.narrow(1, 0, classes).max(1));
    const auto negative = targets.eq(-1);
    const auto easy = negative & max_fg_log_p.lt(std::log(options.easy_prob));
    const auto hard = negative & ~easy;
    const auto l = loss.detach().to(torch::kDouble);
    breakdown->loss_pos = (l * positive).sum().item<double>() / divisor;
    breakdown->loss_neg_easy = (l * easy).sum().item<double>() / divisor;
    breakdown->loss_neg_hard = (l * hard).sum().item<double>() / divisor;
    breakdown->num_pos = positive.sum().item<int64_t>();
    breakdown->num_neg_easy = easy.sum().item<int64_t>();
    breakdown->num_neg_hard = hard.sum().item<int64_t>();
    breakdown->num_ignored = targets.size(0) - valid.sum().item<int64_t>();
  }
  switch (options.reduction) {
    case Reduction::None:
      return loss;
    case Reduction::Sum:
      return loss.sum();
    case Reduction::Mean:
      return loss.sum() / divisor;
  }
  return loss.sum();
}

}  // namespace focaldet::loss
