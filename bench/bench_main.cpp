// Google Benchmark entry point for focaldet_bench. Benchmarks that use LibTorch set their own
// thread count (the `--threads` style flag of each is its benchmark argument).
#include <benchmark/benchmark.h>

BENCHMARK_MAIN();
