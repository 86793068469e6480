#include "common/malloc_settings.h"

#include <limits>  // first: defines __GLIBC__ on glibc

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "common/large_block_allocator.h"

namespace focaldet {

void keep_freed_memory() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
#endif
  use_large_block_allocator();  // blocks above that threshold: huge pages
}

}  // namespace focaldet
