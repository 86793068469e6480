#pragma once
// Model EMA (train.ema_decay): an exponential moving average of a model's parameters and
// buffers (BatchNorm's running statistics too), kept in a second model of the same
// architecture that evaluation, best.pt and `focaldet eval / predict` use. Averaging the noisy
// weights of small-batch steps gives a model that scores better than the last step's
// (Polyak and Juditsky 1992; YOLOX, Ultralytics and timm train detectors with it).
#include <torch/nn/module.h>
#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace focaldet::train {

class ModelAverage {
 public:
  // `average` has `model`'s architecture (the same config). Both stay owned by the caller and
  // must outlive this. With `start_from_model` the average starts as a copy of the model (a
  // new run); without, it keeps what it holds (a resumed one).
  ModelAverage(torch::nn::Module& model, torch::nn::Module& average, double decay,
               bool start_from_model);

  // After optimizer step `step` (1 for the first): w_avg = d w_avg + (1 - d) w for every
  // floating-point tensor, d = decay_at(step); integer buffers (BatchNorm's batch count) copied.
  void update(int64_t step);

  // min(decay, (1 + step) / (10 + step)): TensorFlow's ExponentialMovingAverage warm-up, so the
  // average forgets the random start quickly and then spans about the last tenth of the steps
  // until `decay` caps it.
  static double decay_at(double decay, int64_t step);

 private:
  std::vector<torch::Tensor> model_, average_;  // matching tensors, in state-dict order
  double decay_;
};

}  // namespace focaldet::train
