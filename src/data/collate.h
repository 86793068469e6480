#pragma once
// Batch collation: transformed images padded into one [B, 3, H, W] tensor, targets as tensors.
#include <vector>

#include "data/batch.h"
#include "data/buffer_pool.h"
#include "data/transforms.h"

namespace focaldet::data {

// H and W of a batch: the largest height and width among its images, each rounded up to a
// multiple of `pad_divisor` (>= 1).
std::array<int, 2> padded_size(const std::vector<TransformedSample>& samples, int pad_divisor);

// Allocates the batch tensor once and writes each image into its slot with write_normalized()
// (flip, jitter and normalisation in the same pass, padding zeroed), then the targets. The image
// tensor's memory comes from `pool` when given (the loader's), else from a plain allocation.
Batch collate(const std::vector<TransformedSample>& samples, const TransformOptions& options,
              int pad_divisor, BufferPool* pool = nullptr);

}  // namespace focaldet::data
