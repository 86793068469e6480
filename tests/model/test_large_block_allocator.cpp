// The CPU allocator of common/large_block_allocator.h: blocks of 32 MiB and more come from its
// huge-page path, 2 MiB-aligned and kept for reuse on free; smaller ones from LibTorch's default; both
// hold their data and free through the one raw deleter LibTorch's raw API needs.
#include "common/large_block_allocator.h"

#include <ATen/ATen.h>
#include <c10/core/CPUAllocator.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

namespace focaldet {
namespace {

constexpr int64_t kLargeFloats = static_cast<int64_t>(kLargeBlockBytes / sizeof(float)) + 12345;

TEST(LargeBlockAllocator, LargeTensorsComeFromHugePagesAndHoldTheirData) {
  use_large_block_allocator();
  use_large_block_allocator();  // a second call changes nothing
  at::Tensor big = at::arange(kLargeFloats, at::kDouble).to(at::kFloat);
  const void* data = big.data_ptr();
  EXPECT_TRUE(is_large_block(data));
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(data) % (std::uintptr_t{2} << 20), 0u);
  // Written and read back at both ends, the last page included.
  const int64_t n = kLargeFloats;
  EXPECT_TRUE(at::equal(big.slice(0, 0, 4096), at::arange(4096, at::kFloat)));
  EXPECT_TRUE(at::equal(big.slice(0, n - 4096, n),
                        at::arange(n - 4096, n, at::kDouble).to(at::kFloat)));
  at::Tensor small = at::ones({1000});
  EXPECT_FALSE(is_large_block(small.data_ptr()));
  EXPECT_FLOAT_EQ(small.sum().item<float>(), 1000.0f);
  big.reset();  // freed: no longer in use, kept for the next request of its size
  EXPECT_FALSE(is_large_block(data));
  at::Tensor again = at::empty({kLargeFloats - 1000});
  EXPECT_EQ(again.data_ptr(), data);
  EXPECT_TRUE(is_large_block(data));
  // A request more than a quarter larger maps a new block.
  at::Tensor larger = at::empty({kLargeFloats * 2});
  EXPECT_NE(larger.data_ptr(), data);
  EXPECT_TRUE(is_large_block(larger.data_ptr()));
}

TEST(LargeBlockAllocator, RawAllocateAndDeallocateWorkForBothSizes) {
  use_large_block_allocator();
  c10::Allocator* a = c10::GetCPUAllocator();
  ASSERT_NE(a->raw_deleter(), nullptr);
  for (const std::size_t n : {std::size_t{64}, kLargeBlockBytes + 1}) {
    void* p = a->raw_allocate(n);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(is_large_block(p), n >= kLargeBlockBytes);
    std::memset(p, 0x5a, n);
    EXPECT_EQ(static_cast<unsigned char*>(p)[n - 1], 0x5a);
    a->raw_deallocate(p);
    EXPECT_FALSE(is_large_block(p));
  }
}

}  // namespace
}  // namespace focaldet
