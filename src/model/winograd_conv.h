#pragma once
// A 3x3, stride 1, padding 1 convolution with bias for training, forward and backward on
// oneDNN's Winograd algorithm (F(4x4, 3x3)): the head's convs, which hold most of a training
// step's multiply-adds, at 2.25-4x fewer multiplications than the direct convolution. Inputs
// and outputs are ordinary dense NCHW tensors (oneDNN's blocked layouts live only inside a
// call), and autograd sees one node per conv with the gradients of x, weight and bias.
// Results differ from at::conv2d by float rounding (~1e-6 relative: the transforms round
// differently). Float CPU tensors only; available() says whether this build and CPU have it.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>

namespace focaldet::model {

// Whether oneDNN's Winograd forward and backward primitives exist here (checked once).
bool winograd_training_available();

// conv2d(x, weight, bias, stride 1, padding 1) for x [N, C, H, W], weight [O, C, 3, 3], bias [O]
// or undefined (no bias).
at::Tensor winograd_conv2d(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);

// The same conv for inference with a fixed weight: the weight is transformed into Winograd's
// layout once per input shape and kept until `generation` changes (the owner bumps it when the
// weight or bias changes), so a pass pays only the input and output reorders.
class WinogradInference {
 public:
  at::Tensor forward(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                     uint64_t generation);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace focaldet::model
