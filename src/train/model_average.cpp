#include "train/model_average.h"

#include <torch/nn/module.h>

#include <algorithm>
#include <string>

#include "common/error.h"

namespace focaldet::train {
namespace {

std::vector<torch::Tensor> state_of(const torch::nn::Module& m) {
  std::vector<torch::Tensor> tensors = m.parameters();
  for (const auto& b : m.buffers()) tensors.push_back(b);
  return tensors;
}

}  // namespace

ModelAverage::ModelAverage(torch::nn::Module& model, torch::nn::Module& average, double decay,
                           bool start_from_model)
    : model_(state_of(model)), average_(state_of(average)), decay_(decay) {
  check(model_.size() == average_.size(),
        "model EMA: the averaged model has " + std::to_string(average_.size()) +
            " tensors, the trained one " + std::to_string(model_.size()));
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < model_.size(); ++i) {
    check(model_[i].sizes() == average_[i].sizes() && model_[i].dtype() == average_[i].dtype(),
          "model EMA: the averaged model's tensor " + std::to_string(i) +
              " does not match the trained model's");
    average_[i].requires_grad_(false);
    if (start_from_model) average_[i].copy_(model_[i]);
  }
}

double ModelAverage::decay_at(double decay, int64_t step) {
  return std::min(decay, (1.0 + static_cast<double>(step)) / (10.0 + static_cast<double>(step)));
}

void ModelAverage::update(int64_t step) {
  torch::NoGradGuard no_grad;
  const double weight = 1.0 - decay_at(decay_, step);  // of the new weights
  for (size_t i = 0; i < model_.size(); ++i) {
    if (average_[i].is_floating_point()) {
      average_[i].lerp_(model_[i], weight);
    } else {
      average_[i].copy_(model_[i]);
    }
  }
}

}  // namespace focaldet::train
