// The buffer pool behind batch image tensors: blocks are reused, bounded, and outlive the pool.
#include <gtest/gtest.h>

#include "data/buffer_pool.h"

namespace focaldet::data {
namespace {

TEST(BufferPool, ReleasedBlockIsReused) {
  auto pool = std::make_shared<BufferPool>(4);
  void* first = nullptr;
  {
    torch::Tensor t = pool->empty({2, 3, 8, 8});
    EXPECT_EQ(t.sizes(), (std::vector<int64_t>{2, 3, 8, 8}));
    EXPECT_EQ(t.dtype(), torch::kFloat);
    EXPECT_TRUE(t.is_contiguous());
    first = t.data_ptr();
    t.fill_(1.f);
    EXPECT_EQ(pool->num_free(), 0u);
  }
  EXPECT_EQ(pool->num_free(), 1u);
  torch::Tensor smaller = pool->empty({1, 3, 8, 8});  // fits in the idle block
  EXPECT_EQ(smaller.data_ptr(), first);
  EXPECT_EQ(pool->num_allocated(), 1u);
  torch::Tensor larger = pool->empty({4, 3, 8, 8});  // does not: a new block
  EXPECT_NE(larger.data_ptr(), first);
  EXPECT_EQ(pool->num_allocated(), 2u);
}

TEST(BufferPool, KeepsAtMostMaxFreeBlocksPreferringLarge) {
  auto pool = std::make_shared<BufferPool>(1);
  void* large_ptr = nullptr;
  {
    torch::Tensor small = pool->empty({10});
    torch::Tensor large = pool->empty({1000});
    large_ptr = large.data_ptr();
  }  // both come back; only one is kept: the larger
  EXPECT_EQ(pool->num_free(), 1u);
  torch::Tensor t = pool->empty({10});
  EXPECT_EQ(t.data_ptr(), large_ptr);
}

TEST(BufferPool, TensorOutlivesThePoolHandle) {
  auto pool = std::make_shared<BufferPool>(2);
  torch::Tensor t = pool->empty({16});
  pool.reset();  // the tensor's deleter still holds the pool
  t.fill_(3.f);
  EXPECT_EQ(t.sum().item<float>(), 48.f);
}  // t's block goes back to the pool, then the pool and its blocks are freed

}  // namespace
}  // namespace focaldet::data
