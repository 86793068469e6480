#pragma once
// Reused memory for batch image tensors. A padded batch at the paper's scale (4 x 3 x 896 x 1152
// floats) is 50 MB: above glibc's mmap threshold, so a fresh tensor per batch is a fresh mmap,
// 12,000 page faults on first touch and an munmap on release; on BCCD at shorter side 800 that
// alone cut loader throughput 3.5x. Blocks come back here when the last tensor using them dies,
// on whatever thread that is, and are handed out again.
#include <torch/types.h>

#include <cstddef>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace focaldet::data {

class BufferPool : public std::enable_shared_from_this<BufferPool> {
 public:
  // Create with std::make_shared (the tensors' deleters keep the pool alive). At most
  // `max_free` idle blocks are kept; more are freed as they come back.
  explicit BufferPool(size_t max_free) : max_free_(max_free) {}
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // An uninitialised contiguous float32 CPU tensor of `sizes`, in a block from the pool (the
  // smallest idle one that fits) or newly allocated.
  torch::Tensor empty(at::IntArrayRef sizes);

  size_t num_free() const;       // idle blocks (for tests)
  size_t num_allocated() const;  // blocks ever allocated (for tests)

 private:
  void give_back(float* data, size_t capacity);

  const size_t max_free_;
  mutable std::mutex mutex_;
  std::vector<std::pair<size_t, float*>> free_;  // (capacity in floats, block)
  size_t num_allocated_ = 0;
};

}  // namespace focaldet::data
