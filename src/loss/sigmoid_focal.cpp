#include "loss/sigmoid_focal.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <cmath>
#include <sstream>

#include "common/error.h"
#include "common/targets.h"
#include "loss/composite_reduction.h"
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

// Runs the fused kernel; fills `per_element` / `grad` when they are defined.
detail::FocalSums run_kernel(const torch::Tensor& logits, const torch::Tensor& targets,
                             const detail::FocalKernelArgs& args, torch::Tensor& per_element,
                             torch::Tensor& grad) {
  detail::FocalSums sums;
  AT_DISPATCH_FLOATING_TYPES(logits.scalar_type(), "sigmoid_focal_loss", [&] {
    sums = detail::sigmoid_focal_forward<scalar_t>(
        logits.data_ptr<scalar_t>(), targets.data_ptr<int64_t>(),
        per_element.defined() ? per_element.data_ptr<scalar_t>() : nullptr,
        grad.defined() ? grad.data_ptr<scalar_t>() : nullptr, args);
  });
  return sums;
}

// Forward computes the loss and, when logits require grad, d(loss)/d(logits) in the same pass
// (they share exp and log1p). Backward then only scales it by the upstream gradient, or hands
// it over untouched when that is 1, the common case of loss.backward().
struct SigmoidFocalFunction : public torch::autograd::Function<SigmoidFocalFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& logits,
                               const torch::Tensor& targets, FocalOptions opt,
                               LossBreakdown* breakdown) {
    const auto args = kernel_args(logits, opt);
    torch::Tensor per_element, grad;
    if (opt.reduction == Reduction::None) per_element = torch::empty_like(logits);
    if (logits.requires_grad()) grad = torch::empty_like(logits);
    const detail::FocalSums sums = run_kernel(logits, targets, args, per_element, grad);
    // Mean is over the non-ignored elements; an all-ignored batch has mean 0, not NaN.
    const double count = static_cast<double>((args.rows - sums.num_ignored) * args.classes);
    const double divisor = opt.reduction == Reduction::Mean ? std::max(count, 1.0) : 1.0;
    fill_breakdown(sums, divisor, breakdown);

    ctx->save_for_backward({logits, targets});
    ctx->saved_data["grad"] = grad;
    ctx->saved_data["alpha"] = opt.alpha;
    ctx->saved_data["gamma"] = opt.gamma;
    ctx->saved_data["easy_prob"] = opt.easy_prob;
    ctx->saved_data["reduction"] = static_cast<int64_t>(opt.reduction);
    ctx->saved_data["divisor"] = divisor;
    if (per_element.defined()) return per_element;
    return torch::tensor(sums.loss / divisor, logits.options());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    // Take the gradient out of the context so that autograd can steal it into .grad without a
    // copy. A second backward (retain_graph) finds it gone and recomputes it.
    torch::Tensor grad = ctx->saved_data["grad"].toTensor();
    ctx->saved_data["grad"] = torch::Tensor();
    if (!grad.defined()) {
      const auto saved = ctx->get_saved_variables();
      FocalOptions opt;
      opt.alpha = ctx->saved_data["alpha"].toDouble();
      opt.gamma = ctx->saved_data["gamma"].toDouble();
      opt.easy_prob = ctx->saved_data["easy_prob"].toDouble();
      torch::Tensor no_loss;
      grad = torch::empty_like(saved[0]);
      run_kernel(saved[0], saved[1], kernel_args(saved[0], opt), no_loss, grad);
    }
    const auto reduction = static_cast<Reduction>(ctx->saved_data["reduction"].toInt());
    const double divisor = ctx->saved_data["divisor"].toDouble();
    const torch::Tensor& upstream = grad_outputs[0];
    if (reduction == Reduction::None) {
      grad.mul_(upstream);
    } else {
      const double scale = upstream.item<double>() / divisor;
      if (scale != 1.0) grad.mul_(scale);
    }
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

void check_loss_inputs(const torch::Tensor& logits, const torch::Tensor& targets, int64_t classes,
                       const char* loss_name) {
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
  check(logits.device() == targets.device(),
        name + ": logits and targets must be on the same device");
  const torch::Tensor t = targets.to(torch::kCPU).contiguous();  // [N] int64: a small copy
  const int64_t* p = t.data_ptr<int64_t>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    if ((p[i] < 0 && p[i] != kBackground && p[i] != kIgnore) || p[i] >= classes) {
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
  // The fused kernel reads CPU memory; every other device runs the same loss as tensor ops.
  if (!options.fused || !logits.device().is_cpu())
    return sigmoid_focal_loss_composite(logits, targets, options, breakdown);
  return SigmoidFocalFunction::apply(logits.contiguous(), targets.contiguous(), options, breakdown);
}

torch::Tensor sigmoid_focal_loss_composite(const torch::Tensor& logits,
                                           const torch::Tensor& targets,
                                           const FocalOptions& options, LossBreakdown* breakdown) {
  check_focal_options(options.alpha, options.gamma, options.easy_prob);
  check_loss_inputs(logits, targets, logits.dim() == 2 ? logits.size(1) : 0, "sigmoid_focal_loss");
  const int64_t classes = logits.size(1);
  const auto positive =
      torch::arange(classes, targets.options()).unsqueeze(0).eq(targets.unsqueeze(1));
  const auto valid = targets.ne(kIgnore);
  // z = s x with s = +1 for the target class, -1 otherwise; p_t = sigmoid(z).
  const auto z = torch::where(positive, logits, -logits);
  const auto log_pt = at::log_sigmoid(z);
  auto loss = -log_pt;
  if (options.gamma != 0) loss = loss * at::exp(options.gamma * at::log_sigmoid(-z));
  if (options.alpha >= 0) {
    loss = loss * torch::where(positive, torch::full_like(loss, options.alpha),
                               torch::full_like(loss, 1 - options.alpha));
  }
  loss = loss * valid.unsqueeze(1).to(loss.scalar_type());
  const auto all_below_easy =
      std::get<0>(logits.detach().max(1)).lt(std::log(options.easy_prob / (1 - options.easy_prob)));
  return detail::reduce_with_breakdown(
      loss, targets, all_below_easy,
      static_cast<double>(valid.sum().item<int64_t>()) * static_cast<double>(classes),
      options.reduction, breakdown);
}

}  // namespace focaldet::loss
