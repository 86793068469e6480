#pragma once
// A 3x3, stride 1, padding 1 convolution on Winograd's F(4x4, 3x3) algorithm written as
// transforms plus 36 matrix products (at::bmm, i.e. the BLAS LibTorch links): for CPUs where
// oneDNN has no Winograd kernel (every CPU without AVX-512: most laptops, AMD before Zen 4),
// whose direct 3x3 convolution runs at a fraction of what the same multiply-adds take as one
// large GEMM. 4x fewer multiplications than the direct convolution; the transforms are memory
// passes. Forward and backward (autograd sees one node with the gradients of x, weight, bias).
// Results differ from at::conv2d by float rounding (~1e-5 relative: F(4x4)'s transforms
// amplify it more than the direct sum). Dense float CPU tensors only.
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace focaldet::model::gemm_winograd {

// Whether this conv is faster on this path than oneDNN's direct one on an AVX2 CPU (BM_Conv3x3
// in bench/bench_model.cpp, 2 threads, docs/benchmarks.md). Forward only (`backward` false):
// 1.3-2.8x from 64 channels and 16 tiles of 4x4 outputs up. Training (`backward` true): d/dw's
// products have the tile count as their inner size and write a gradient 4x the weight's, a
// cost that grows with the channels, not the map: 1.4-3.0x where the tiles number at least 64
// and a quarter of C + O, down to 0.3x below (512 channels at 15x20).
bool pays(int64_t n, int64_t c, int64_t o, int64_t h, int64_t w, bool backward);

// The weight in Winograd's domain: [36, O, C] for weight [O, C, 3, 3].
at::Tensor transform_weight(const at::Tensor& weight);

// conv2d(x, weight, bias, stride 1, padding 1) from the transformed weight, without autograd
// (inference keeps `u` across calls). bias [O] or undefined. `relu`: ReLU applied as each output
// row is written (no separate pass over the output).
at::Tensor forward(const at::Tensor& x, const at::Tensor& u, const at::Tensor& bias,
                   bool relu = false);

// conv2d(x, weight, bias, stride 1, padding 1) for x [N, C, H, W], weight [O, C, 3, 3], bias [O]
// or undefined, with autograd.
at::Tensor conv2d(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);

}  // namespace focaldet::model::gemm_winograd
