#include "train/optimizer.h"

#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>

#include "common/error.h"

namespace focaldet::train {

std::unique_ptr<torch::optim::Optimizer> make_optimizer(std::vector<torch::Tensor> parameters,
                                                        const OptimizerOptions& o) {
  if (o.name == "sgd") {
    torch::optim::SGDOptions s(o.lr);
    s.momentum(o.momentum).nesterov(o.nesterov).weight_decay(o.weight_decay);
    return std::make_unique<torch::optim::SGD>(std::move(parameters), s);
  }
  if (o.name == "adamw") {
    torch::optim::AdamWOptions a(o.lr);
    a.betas({o.beta1, o.beta2}).eps(o.eps).weight_decay(o.weight_decay);
    return std::make_unique<torch::optim::AdamW>(std::move(parameters), a);
  }
  throw Error("unknown optimizer '" + o.name + "' (expected sgd or adamw)");
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

}  // namespace focaldet::train
