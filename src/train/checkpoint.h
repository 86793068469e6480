#pragma once
// Training checkpoints: model, optimizer, and where training stands (iteration, position in the
// epoch, elapsed time, the loss normaliser's average, the best AP so far, the RNG), in one
// LibTorch archive written atomically (temp file + rename), so a run killed at any moment
// resumes from the last complete checkpoint.
#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <cstdint>
#include <string>
#include <vector>

namespace focaldet::train {

struct TrainState {
  int64_t iteration = 0;       // optimizer steps taken
  int64_t epoch = 0;           // the epoch the next batch belongs to
  int64_t batch_in_epoch = 0;  // the next batch's number in that epoch
  double elapsed_seconds = 0;  // training wall clock so far (minute budgets go on from here)
  double normalizer = 100.0;   // LossNormalizer's moving average
  double best_ap = -1;         // best AP on the val split so far (-1: none yet)
  int64_t best_iteration = -1;
  int64_t evaluated_iteration = -1;  // the last iteration evaluated on the val split
  // The open log window's sums (LogWindow::state()): a stop between log steps resumes with
  // the same averages.
  std::vector<double> log_window;
  // Data-parallel ranks that wrote it: batch_in_epoch counts batches of batch_size on each of
  // them (a resume on another world size converts it; older checkpoints: 1).
  int64_t world_size = 1;
  // The checkpoint holds model-EMA weights (train.ema_decay > 0); after load_inference_weights:
  // the model got them.
  bool averaged = false;
};

// `averaged`: the model EMA's weights (train/model_average.h), null when there is none.
// Throws focaldet::Error naming `path` when it cannot be written.
void save_checkpoint(const std::string& path, const torch::nn::Module& model,
                     const torch::optim::Optimizer* optimizer, const TrainState& state,
                     const torch::nn::Module* averaged = nullptr);

// For a resume: loads the trained weights into `model`, `optimizer` unless null, and the EMA
// weights into `averaged` unless null or the checkpoint has none (state.averaged says which),
// and returns the state. A missing, truncated or corrupt file, or one whose tensors do not fit
// the model (another config), is an Error naming the file.
TrainState load_checkpoint(const std::string& path, torch::nn::Module& model,
                           torch::optim::Optimizer* optimizer,
                           torch::nn::Module* averaged = nullptr);

// For evaluation and prediction: the weights a run is meant to be used with, its EMA's when it
// kept one (state.averaged), else the last step's. Errors as load_checkpoint.
TrainState load_inference_weights(const std::string& path, torch::nn::Module& model);

}  // namespace focaldet::train
