#include "data/buffer_pool.h"

#include <ATen/ops/from_blob.h>

#include <cstdlib>
#include <functional>
#include <new>

namespace focaldet::data {

namespace {

constexpr size_t kAlignment = 64;  // a cache line; also what AVX-512 loads like

float* allocate(size_t capacity) {
  const size_t bytes = (capacity * sizeof(float) + kAlignment - 1) / kAlignment * kAlignment;
  void* p = std::aligned_alloc(kAlignment, bytes == 0 ? kAlignment : bytes);
  if (p == nullptr) throw std::bad_alloc();
  return static_cast<float*>(p);
}

}  // namespace

BufferPool::~BufferPool() {
  for (auto& [capacity, data] : free_) std::free(data);
}

torch::Tensor BufferPool::empty(at::IntArrayRef sizes) {
  size_t n = 1;
  for (int64_t s : sizes) n *= static_cast<size_t>(s);
  float* data = nullptr;
  size_t capacity = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    size_t best = free_.size();
    for (size_t i = 0; i < free_.size(); ++i) {
      if (free_[i].first >= n && (best == free_.size() || free_[i].first < free_[best].first)) {
        best = i;
      }
    }
    if (best < free_.size()) {
      capacity = free_[best].first;
      data = free_[best].second;
      free_[best] = free_.back();
      free_.pop_back();
    } else {
      ++num_allocated_;
    }
  }
  if (data == nullptr) {
    capacity = n;
    data = allocate(capacity);
  }
  std::shared_ptr<BufferPool> self = shared_from_this();
  return at::from_blob(
      data, sizes, [self, capacity](void* p) { self->give_back(static_cast<float*>(p), capacity); },
      at::TensorOptions().dtype(at::kFloat));
}

void BufferPool::give_back(float* data, size_t capacity) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (free_.size() < max_free_) {
    free_.emplace_back(capacity, data);
    return;
  }
  // Full: keep the larger blocks (they fit more requests under multi-scale training).
  size_t smallest = 0;
  for (size_t i = 1; i < free_.size(); ++i) {
    if (free_[i].first < free_[smallest].first) smallest = i;
  }
  if (!free_.empty() && free_[smallest].first < capacity) {
    std::swap(free_[smallest].first, capacity);
    std::swap(free_[smallest].second, data);
  }
  std::free(data);
}

size_t BufferPool::num_free() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return free_.size();
}

size_t BufferPool::num_allocated() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return num_allocated_;
}

}  // namespace focaldet::data
