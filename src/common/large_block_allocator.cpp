#include "common/large_block_allocator.h"

#include <c10/core/CPUAllocator.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace focaldet {

#if defined(__linux__)
namespace {

constexpr std::size_t kHugePage = std::size_t{2} << 20;
// Freed large blocks kept for reuse, at most this many bytes: a training step or an inference
// pass frees and asks again for the same sizes, and a kept block costs no fault and no zeroing.
constexpr std::size_t kKeepBytes = std::size_t{1} << 30;

// Every block this allocator hands out, small or large, is freed by delete_block: LibTorch's
// raw_allocate / raw_deallocate need one deleter for all (c10/core/Allocator.h).
struct Blocks {
  std::mutex mutex;
  std::unordered_map<const void*, std::size_t> large;  // data -> mapped length, in use
  std::multimap<std::size_t, void*> kept;               // mapped length -> freed block
  std::size_t kept_bytes = 0;
  c10::DeleterFnPtr small_deleter = nullptr;
};

Blocks& blocks() {
  static Blocks* b = new Blocks();  // never destroyed: tensors may outlive static destructors
  return *b;
}

void delete_block(void* data) {
  if (data == nullptr) return;
  Blocks& b = blocks();
  std::size_t length = 0;
  {
    std::lock_guard<std::mutex> lock(b.mutex);
    const auto it = b.large.find(data);
    if (it != b.large.end()) {
      length = it->second;
      b.large.erase(it);
      if (b.kept_bytes + length <= kKeepBytes) {
        b.kept.emplace(length, data);
        b.kept_bytes += length;
        return;
      }
    }
  }
  if (length > 0) {
    munmap(data, length);
  } else {
    b.small_deleter(data);
  }
}

// Unmaps every kept block; returns how many bytes that gave back.
std::size_t release_kept() {
  Blocks& b = blocks();
  std::multimap<std::size_t, void*> kept;
  {
    std::lock_guard<std::mutex> lock(b.mutex);
    kept.swap(b.kept);
    b.kept_bytes = 0;
  }
  std::size_t bytes = 0;
  for (const auto& [length, data] : kept) {
    munmap(data, length);
    bytes += length;
  }
  return bytes;
}

class LargeBlockAllocator final : public c10::Allocator {
 public:
  explicit LargeBlockAllocator(c10::Allocator* fallback) : fallback_(fallback) {}

  c10::DataPtr allocate(std::size_t n) const override {
    if (n >= kLargeBlockBytes) {
      if (void* data = map_large(n)) return {data, data, &delete_block, c10::Device(c10::kCPU)};
    }
    c10::DataPtr p = fallback_->allocate(n);
    void* data = p.release_context();  // the default allocator's context is its data
    return {data, data, &delete_block, c10::Device(c10::kCPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &delete_block; }

 private:
  // A kept block of n bytes rounded up to 2 MiB (at most a quarter larger), or a new map of
  // that length at a 2 MiB boundary (huge pages need both); nullptr when mapping fails, so the
  // caller falls back to the default allocator (which reports out of memory).
  static void* map_large(std::size_t n) {
    const std::size_t length = (n + kHugePage - 1) / kHugePage * kHugePage;
    Blocks& b = blocks();
    {
      std::lock_guard<std::mutex> lock(b.mutex);
      const auto it = b.kept.lower_bound(length);
      if (it != b.kept.end() && it->first <= length + length / 4) {
        void* data = it->second;
        b.large.emplace(data, it->first);
        b.kept_bytes -= it->first;
        b.kept.erase(it);
        return data;
      }
    }
    const auto map = [&] {
      return mmap(nullptr, length + kHugePage, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    };
    void* raw = map();
    if (raw == MAP_FAILED && release_kept() > 0) raw = map();  // out of memory: give kept back
    if (raw == MAP_FAILED) return nullptr;
    const auto start = reinterpret_cast<std::uintptr_t>(raw);
    const std::uintptr_t aligned = (start + kHugePage - 1) / kHugePage * kHugePage;
    if (aligned > start) munmap(raw, aligned - start);
    const std::uintptr_t end = start + length + kHugePage;
    if (end > aligned + length) {
      munmap(reinterpret_cast<void*>(aligned + length), end - aligned - length);
    }
    void* data = reinterpret_cast<void*>(aligned);
    madvise(data, length, MADV_HUGEPAGE);  // a hint: without THP the pages stay 4 KiB
    std::lock_guard<std::mutex> lock(b.mutex);
    b.large.emplace(data, length);
    return data;
  }

  c10::Allocator* fallback_;
};

}  // namespace

void use_large_block_allocator() {
  static std::once_flag once;
  std::call_once(once, [] {
    c10::Allocator* fallback = c10::GetDefaultCPUAllocator();
    blocks().small_deleter = fallback->raw_deleter();
    if (blocks().small_deleter == nullptr) return;  // cannot wrap it: keep the default
    static LargeBlockAllocator allocator(fallback);
    c10::SetCPUAllocator(&allocator, /*priority=*/1);
  });
}

bool is_large_block(const void* data) {
  Blocks& b = blocks();
  std::lock_guard<std::mutex> lock(b.mutex);
  return b.large.count(data) > 0;
}

#else

void use_large_block_allocator() {}
bool is_large_block(const void*) { return false; }

#endif

}  // namespace focaldet
