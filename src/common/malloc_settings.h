#pragma once
// glibc malloc settings for a process that runs LibTorch. No torch in this header.

namespace focaldet {

// LibTorch frees and allocates the same large activation buffers at every step and every image.
// By default glibc hands blocks over 128 KiB (threshold adapting up to 32 MiB) back to the
// kernel and trims the heap, so each step pays page faults to zero fresh pages: CPU training
// ran 1.7x slower (docs/benchmarks.md). This keeps freed memory in the process instead: blocks
// up to 32 MiB (glibc's maximum) come from the heap, and the heap is never trimmed; larger
// blocks, which glibc would map afresh 4 KiB page by page, go to LibTorch's CPU allocator on
// 2 MiB pages (common/large_block_allocator.h). Call it first thing in main(), before any
// allocation worth keeping. The malloc settings do nothing off glibc.
void keep_freed_memory();

}  // namespace focaldet
