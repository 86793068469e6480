#pragma once
// The model behind fuzz/corpus/checkpoint/: the smallest module with what a detector's
// checkpoint has (nested modules, parameters, BatchNorm buffers) and AdamW state, so that a
// seed checkpoint is a few KB. fuzz_checkpoint_seed writes the seeds; fuzz_checkpoint loads
// every input into a fresh one.
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/adamw.h>

#include <memory>

namespace focaldet::fuzz {

struct TinyNetImpl : torch::nn::Module {
  TinyNetImpl()
      : conv(register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(
                                         /*in=*/1, /*out=*/2, /*kernel=*/1)))),
        bn(register_module("bn", torch::nn::BatchNorm2d(2))),
        fc(register_module("fc", torch::nn::Linear(2, 1))) {}

  torch::Tensor forward(const torch::Tensor& x) {  // x: [N, 1, H, W] -> [N, 1]
    return fc(bn(conv(x)).mean({2, 3}));
  }

  torch::nn::Conv2d conv;
  torch::nn::BatchNorm2d bn;
  torch::nn::Linear fc;
};
TORCH_MODULE(TinyNet);

inline std::unique_ptr<torch::optim::AdamW> tiny_optimizer(TinyNet& net) {
  return std::make_unique<torch::optim::AdamW>(net->parameters(),
                                               torch::optim::AdamWOptions(/*lr=*/1e-3));
}

}  // namespace focaldet::fuzz
