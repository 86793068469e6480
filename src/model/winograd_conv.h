#pragma once
// A 3x3, stride 1, padding 1 convolution with bias for training, forward and backward on
// oneDNN's Winograd algorithm (F(4x4, 3x3)): the head's convs, which hold most of a training
// step's multiply-adds, at 2.25-4x fewer multiplications than the direct convolution. Inputs
// and outputs are ordinary dense NCHW tensors (oneDNN's blocked layouts live only inside a
// call), and autograd sees one node per conv with the gradients of x, weight and bias.
// Results differ from at::conv2d by float rounding (~1e-6 relative: the transforms round
// differently). Float CPU tensors only.
// Where oneDNN has no Winograd kernel (a CPU without AVX-512, or a build without libdnnl-dev),
// the same calls run model::gemm_winograd (F(4x4, 3x3) as transforms and BLAS products, ~1e-5
// relative) on the shapes where that pays, and the direct convolution on the others.
#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <memory>

namespace focaldet::model {

// Whether winograd_conv2d has a Winograd algorithm here: always (oneDNN's where the CPU has
// it, else the GEMM path); kept as the switch callers test.
bool winograd_training_available();

// Whether a conv of this shape runs on a Winograd algorithm here (oneDNN's: every shape; the
// GEMM path: gemm_winograd::pays, `backward` for a conv that will be differentiated), so a
// caller holding a blocked map knows a dense round trip buys something.
bool winograd_pays(int64_t n, int64_t c, int64_t o, int64_t h, int64_t w, bool backward);

// conv2d(x, weight, bias, stride 1, padding 1) for x [N, C, H, W], weight [O, C, 3, 3], bias [O]
// or undefined (no bias).
at::Tensor winograd_conv2d(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);

// The same conv for inference with a fixed weight: the weight is transformed into Winograd's
// layout once per input shape and kept until `generation` changes (the owner bumps it when the
// weight or bias changes), so a pass pays only the input and output reorders.
class WinogradInference {
 public:
  // `relu`: relu(conv(x)), fused into the output where the path allows.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                     uint64_t generation, bool relu = false);
  // The same with the generation kept here: a new one whenever `weight` or `bias` (undefined:
  // none) has been written in place (its version counter) or replaced (its storage) since the
  // last call, so the caller needs no bookkeeping of its own.
  at::Tensor forward_tracked(const at::Tensor& x, const at::Tensor& weight,
                             const at::Tensor& bias, bool relu);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
  std::array<int64_t, 2> versions_{-1, -1};  // weight, bias as last seen
  std::array<const void*, 2> storages_{};
  uint64_t generation_ = 0;
};

}  // namespace focaldet::model
