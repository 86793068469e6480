#pragma once
// The optimizer a config names (SGD with momentum / Nesterov, or AdamW), over the parameters
// that require gradients, and setting its learning rate each step.
#include <torch/optim/optimizer.h>

#include <memory>
#include <string>
#include <vector>

namespace focaldet::train {

struct OptimizerOptions {
  std::string name = "sgd";  // sgd | adamw
  double lr = 0.01;
  double momentum = 0.9;
  bool nesterov = false;
  double weight_decay = 1e-4;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
};

// Throws focaldet::Error for an unknown name.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(std::vector<torch::Tensor> parameters,
                                                        const OptimizerOptions& options);

// Sets every parameter group's learning rate.
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);

}  // namespace focaldet::train
