// Writes the seed corpus of the `checkpoint` fuzz target: checkpoints of fuzz/tiny_net.h's
// TinyNet by train::save_checkpoint, as training writes them.
// Usage: fuzz_checkpoint_seed OUT_DIR
#include <torch/torch.h>

#include <cstdio>
#include <string>

#include "tiny_net.h"
#include "train/checkpoint.h"

int main(int argc, char** argv) {
  using namespace focaldet;
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_checkpoint_seed OUT_DIR\n");
    return 2;
  }
  const std::string out = argv[1];
  torch::manual_seed(0);
  fuzz::TinyNet net;
  auto optimizer = fuzz::tiny_optimizer(net);
  train::TrainState state;
  // Before any step: no optimizer state yet, no log window.
  train::save_checkpoint(out + "/fresh.pt", *net, optimizer.get(), state);
  // After a step, mid-run: AdamW moments, BatchNorm running stats, an open log window.
  net->train();
  const torch::Tensor loss = net->forward(torch::randn({2, 1, 3, 3})).square().sum();
  loss.backward();
  optimizer->step();
  state.iteration = 1;
  state.epoch = 0;
  state.batch_in_epoch = 1;
  state.elapsed_seconds = 0.25;
  state.normalizer = 99.5;
  state.best_ap = 0.125;
  state.best_iteration = 1;
  state.evaluated_iteration = 1;
  state.log_window = {1.5, 0.5, 2.0};
  train::save_checkpoint(out + "/step1.pt", *net, optimizer.get(), state);
  // Without the optimizer (a checkpoint that eval loads, not resume).
  train::save_checkpoint(out + "/no_optimizer.pt", *net, nullptr, state);
  return 0;
}
