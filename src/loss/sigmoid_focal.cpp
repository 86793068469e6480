#include "loss/sigmoid_focal.h"

#include <torch/csrc/autograd/custom_function.h>

#include <cmath>
#include <sstream>

#include "common/error.h"
#include "loss/sigmoid_focal_kernel.h"

namespace focaldet::loss {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

detail::FocalKernelArgs kernel_args(const torch::Tensor& logits, const FocalOptions& opt) {
  detail::FocalKernelArgs args;
  args.rows = logits.size(0);
  args.classes = logits.size(1);
  args.alpha_pos = opt.alpha >= 0 ? opt.alpha : 1.0;
  args.alpha_neg = opt.alpha >= 0 ? 1.0 - opt.alpha : 1.0;
  args.gamma = opt.gamma;
  args.easy_logit = std::log(opt.easy_prob / (1.0 - opt.easy_prob));
  return args;
}

// Copies the kernel's sums into a breakdown, divided by `divisor` (1 for Sum, the element count
// for Mean) so that the parts add up to the returned loss.
void fill_breakdown(const detail::FocalSums& s, double divisor, LossBreakdown* out) {
  if (out == nullptr) return;
  out->loss_pos = s.pos / divisor;
  out->loss_neg_hard = s.neg_hard / divisor;
  out->loss_neg_easy = s.neg_easy / divisor;
  out->num_pos = s.num_pos;
  out->num_neg_hard = s.num_neg_hard;
  out->num_neg_easy = s.num_neg_easy;
  out->num_ignored = s.num_ignored;
}

struct SigmoidFocalFunction : public torch::autograd::Function<SigmoidFocalFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& logits,
                               const torch::Tensor& targets, FocalOptions opt,
                               LossBreakdown* breakdown) {
    const auto args = kernel_args(logits, opt);
    torch::Tensor per_element;
    if (opt.reduction == Reduction::None) per_element = torch::empty_like(logits);
    detail::FocalSums sums;
    AT_DISPATCH_FLOATING_TYPES(logits.scalar_type(), "sigmoid_focal_forward", [&] {
      sums = detail::sigmoid_focal_forward<scalar_t>(
          logits.data_ptr<scalar_t>(), targets.data_ptr<int64_t>(),
          per_element.defined() ? per_element.data_ptr<scalar_t>() : nullptr, args);
    });
    // Mean is over the non-ignored elements; an all-ignored batch has mean 0, not NaN.
    const double count = static_cast<double>((args.rows - sums.num_ignored) * args.classes);
    const double divisor = opt.reduction == Reduction::Mean ? std::max(count, 1.0) : 1.0;
    fill_breakdown(sums, divisor, breakdown);

    ctx->save_for_backward({logits, targets});
    ctx->saved_data["alpha"] = opt.alpha;
    ctx->saved_data["gamma"] = opt.gamma;
    ctx->saved_data["easy_prob"] = opt.easy_prob;
    ctx->saved_data["reduction"] = static_cast<int64_t>(opt.reduction);
    ctx->saved_data["divisor"] = divisor;
    if (per_element.defined()) return per_element;
    return torch::tensor(sums.loss / divisor, logits.options());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& logits = saved[0];
    const torch::Tensor& targets = saved[1];
    FocalOptions opt;
    opt.alpha = ctx->saved_data["alpha"].toDouble();
    opt.gamma = ctx->saved_data["gamma"].toDouble();
    opt.easy_prob = ctx->saved_data["easy_prob"].toDouble();
    opt.reduction = static_cast<Reduction>(ctx->saved_data["reduction"].toInt());
    const double divisor = ctx->saved_data["divisor"].toDouble();
    const auto args = kernel_args(logits, opt);

    torch::Tensor upstream = grad_outputs[0];
    torch::Tensor grad = torch::empty_like(logits);
    AT_DISPATCH_FLOATING_TYPES(logits.scalar_type(), "sigmoid_focal_backward", [&] {
      if (opt.reduction == Reduction::None) {
        upstream = upstream.to(logits.scalar_type()).contiguous();
        detail::sigmoid_focal_backward<scalar_t>(
            logits.data_ptr<scalar_t>(), targets.data_ptr<int64_t>(),
            upstream.data_ptr<scalar_t>(), scalar_t(1), grad.data_ptr<scalar_t>(), args);
      } else {
        const auto scale = static_cast<scalar_t>(upstream.item<double>() / divisor);
        detail::sigmoid_focal_backward<scalar_t>(logits.data_ptr<scalar_t>(),
                                                 targets.data_ptr<int64_t>(), nullptr, scale,
                                                 grad.data_ptr<scalar_t>(), args);
      }
    });
    return {grad, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

std::string shape_of(const torch::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}

}  // namespace

void check_focal_options(double alpha, double gamma, double easy_prob) {
  check(std::isfinite(alpha) && alpha <= 1.0,
        "focal loss: alpha must be finite and <= 1 (negative turns alpha-balancing off), got " +
            std::to_string(alpha));
  check(std::isfinite(gamma) && gamma >= 0.0,
        "focal loss: gamma must be finite and >= 0, got " + std::to_string(gamma));
  check(std::isfinite(easy_prob) && easy_prob > 0.0 && easy_prob < 1.0,
        "loss breakdown: easy_prob must be in (0, 1), got " + std::to_string(easy_prob));
}

void check_loss_inputs(const torch::Tensor& logits, const torch::Tensor& targets,
                       int64_t classes, const char* loss_name) {
  const std::string name(loss_name);
  check(logits.defined() && targets.defined(), name + ": logits and targets must be defined");
  check(logits.dim() == 2, name + ": logits must be [N, C], got shape " + shape_of(logits));
  check(logits.scalar_type() == torch::kFloat || logits.scalar_type() == torch::kDouble,
        name + ": logits must be float32 or float64, got " +
            std::string(c10::toString(logits.scalar_type())));
  check(targets.scalar_type() == torch::kLong,
        name + ": targets must be int64, got " + std::string(c10::toString(targets.scalar_type())));
  check(targets.dim() == 1 && targets.size(0) == logits.size(0),
        name + ": targets must be [N] with N = " + std::to_string(logits.size(0)) +
            " (rows of logits), got shape " + shape_of(targets));
  check(logits.device().is_cpu() && targets.device().is_cpu(),
        name + ": the fused kernel runs on CPU tensors");
  const torch::Tensor t = targets.contiguous();
  const int64_t* p = t.data_ptr<int64_t>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (p[i] < -2 || p[i] >= classes) {
      throw Error(name + ": targets[" + std::to_string(i) + "] = " + std::to_string(p[i]) +
                  " is out of range: expected a class in [0, " + std::to_string(classes) +
                  "), -1 (background) or -2 (ignored)");
    }
  }
}

torch::Tensor sigmoid_focal_loss(const torch::Tensor& logits, const torch::Tensor& targets,
                                 const FocalOptions& options, LossBreakdown* breakdown) {
  check_focal_options(options.alpha, options.gamma, options.easy_prob);
  check_loss_inputs(logits, targets, logits.dim() == 2 ? logits.size(1) : 0, "sigmoid_focal_loss");
  return SigmoidFocalFunction::apply(logits.contiguous(), targets.contiguous(), options,
                                     breakdown);
}

}  // namespace focaldet::loss
