// Google Benchmark entry point for focaldet_bench. Benchmarks that use LibTorch set their own
// thread count (the `--threads` style flag of each is its benchmark argument).
#include <benchmark/benchmark.h>

#include "common/malloc_settings.h"

// As focaldet's main() does: freed buffers stay in the process, so a benchmark that allocates
// large tensors times its work, not the kernel zeroing fresh pages.
int main(int argc, char** argv) {
  focaldet::keep_freed_memory();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
