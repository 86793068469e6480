// Writes the seed corpus of the `checkpoint` fuzz target: checkpoints of fuzz/tiny_net.h's
// TinyNet by train::save_checkpoint, as training writes them (fresh.pt, step1.pt,
// no_optimizer.pt; the corpus's pre_world_size_*.pt are the same written before checkpoints
// held the world size).
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

  // Each seed loads as fuzz_checkpoint loads its inputs (else the corpus would only start the
  // fuzzer on refusals).
  for (const char* name : {"fresh.pt", "step1.pt", "no_optimizer.pt"}) {
    fuzz::TinyNet loaded;
    auto loaded_optimizer = fuzz::tiny_optimizer(loaded);
    const bool with_optimizer = std::string(name) != "no_optimizer.pt";
    try {
      train::load_checkpoint(out + "/" + name, *loaded,
                             with_optimizer ? loaded_optimizer.get() : nullptr);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "fuzz_checkpoint_seed: %s does not load: %s\n", name, e.what());
      return 1;
    }
  }
  return 0;
}
