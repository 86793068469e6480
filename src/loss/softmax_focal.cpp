#include "loss/softmax_focal.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <cmath>

#include "common/error.h"
#include "common/targets.h"
#include "loss/composite_reduction.h"

namespace focaldet::loss {

torch::Tensor softmax_focal_loss(const torch::Tensor& logits, const torch::Tensor& targets,
                                 const FocalOptions& options, LossBreakdown* breakdown) {
  check_focal_options(options.alpha, options.gamma, options.easy_prob);
  check(logits.dim() == 2 && logits.size(1) >= 2,
        "softmax_focal_loss: logits must be [N, C+1] with a background column, C >= 1");
  const int64_t classes = logits.size(1) - 1;
  check_loss_inputs(logits, targets, classes, "softmax_focal_loss");

  const auto valid = targets.ne(kIgnore);
  const auto positive = targets.ge(0);
  // Background is column C; ignored rows point at column 0 and are masked out below.
  const auto column = torch::where(targets.eq(kBackground), torch::full_like(targets, classes),
                                   targets.clamp_min(0));
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

  const auto all_below_easy =
      std::get<0>(log_p.detach().narrow(1, 0, classes).max(1)).lt(std::log(options.easy_prob));
  return detail::reduce_with_breakdown(loss, targets, all_below_easy,
                                       static_cast<double>(valid.sum().item<int64_t>()),
                                       options.reduction, breakdown);
}

}  // namespace focaldet::loss
