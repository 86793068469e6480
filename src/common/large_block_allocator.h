#pragma once
// A LibTorch CPU allocator that maps blocks of 32 MiB and more on transparent huge pages.
// No torch in this header.

#include <cstddef>

namespace focaldet {

// Blocks at or above this size go to the huge-page path; smaller ones to LibTorch's default.
// It is glibc's largest mmap threshold: glibc maps every block above it afresh, so each use of
// a fresh 4 KiB page costs a page fault. One 36.7 MB oneDNN reorder at eval batch 8 took ~75 ms
// that way (docs/benchmarks.md, "Inference throughput").
constexpr std::size_t kLargeBlockBytes = std::size_t{32} << 20;

// Installs the allocator as LibTorch's CPU allocator (once; later calls do nothing). Large
// blocks are mapped 2 MiB-aligned with madvise(MADV_HUGEPAGE), so the kernel backs them with
// 2 MiB pages where transparent huge pages are "always" or "madvise" (one fault per 2 MiB, not
// per 4 KiB). Freed ones are kept, up to 1 GiB in all, and handed out again for a request of
// their size (up to a quarter smaller): the next step's same-sized buffers cost no page fault
// and no zeroing. Linux only; elsewhere it does nothing.
void use_large_block_allocator();

// True when `data` came from the huge-page path of the installed allocator (for tests).
bool is_large_block(const void* data);

}  // namespace focaldet
