// Fuzz target `checkpoint`: train::load_checkpoint, as `--resume` and `eval --checkpoint` use
// it, on any bytes. It reads a path, so each run writes the input to SCRATCH/checkpoint.pt and
// loads it into a fresh fuzz/tiny_net.h TinyNet and its AdamW (load replaces the model's
// tensors, so one model cannot serve two inputs). Checks: a file that loads leaves every
// parameter and buffer with the model's own shape (checkpoint.h: a checkpoint of another
// architecture is an Error).
#include <torch/torch.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fuzz_util.h"
#include "tiny_net.h"
#include "train/checkpoint.h"

namespace focaldet::fuzz {
namespace {

std::vector<std::pair<std::string, std::vector<int64_t>>> shapes_of(const torch::nn::Module& m) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> shapes;
  for (const auto& p : m.named_parameters()) shapes.emplace_back(p.key(), p.value().sizes().vec());
  for (const auto& b : m.named_buffers()) shapes.emplace_back(b.key(), b.value().sizes().vec());
  return shapes;
}

}  // namespace
}  // namespace focaldet::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  torch::set_num_threads(1);
  focaldet::fuzz::quiet_logging();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace focaldet;
  using namespace focaldet::fuzz;
  const fs::path path = scratch_dir() / "checkpoint.pt";
  write_bytes(path, std::string_view(reinterpret_cast<const char*>(data), size));
  TinyNet net;
  auto optimizer = tiny_optimizer(net);
  const auto expected = shapes_of(*net);
  if (!run_reader("load_checkpoint",
                  [&] { (void)train::load_checkpoint(path.string(), *net, optimizer.get()); })) {
    return 0;
  }
  FUZZ_CHECK(shapes_of(*net) == expected, "a checkpoint changed the model's shapes");
  return 0;
}
