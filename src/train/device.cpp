#include "train/device.h"

#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <torch/cuda.h>

#include <string>

#include "common/error.h"
#include "config/config_io.h"
#include "train/metrics_log.h"

#ifdef FOCALDET_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace focaldet::train {
namespace {

// Why no CUDA device is visible, as far as this binary knows.
#ifdef FOCALDET_WITH_CUDA
constexpr const char* kNoCuda =
    "this process sees no CUDA device (no GPU, no driver, or CUDA_VISIBLE_DEVICES hides them)";
#else
constexpr const char* kNoCuda =
    "this process sees no CUDA device: this focaldet was built without CUDA (Debian's LibTorch "
    "is CPU-only; build against a CUDA LibTorch with cmake -DFOCALDET_CUDA=ON)";
#endif

}  // namespace

torch::Device resolve_device(const config::Config& c, int local_rank, int world_size,
                             int cuda_devices) {
  const std::string& name = c.run.device;
  if (name == "cpu") return torch::kCPU;
  const std::string key = config::where(c, "run.device") + ": run.device: " + name;
  // validate() admits cpu, cuda and cuda:N alone; a Config built in code may hold anything.
  int index = local_rank;
  if (name != "cuda") {
    check(name.rfind("cuda:", 0) == 0 && name.size() > 5 && name.size() <= 8 &&
              name.find_first_not_of("0123456789", 5) == std::string::npos,
          key + ": must be cpu, cuda or cuda:N (N a GPU index)");
    index = std::stoi(name.substr(5));
    check(world_size <= 1,
          key + " names one GPU, but this run has " + std::to_string(world_size) +
              " data-parallel ranks, each on its own GPU: write cuda (cuda:LOCAL_RANK on each)");
  }
  check(cuda_devices > 0, key + ": CUDA cannot be used: " + kNoCuda +
                              ". Use cpu, or run where a CUDA LibTorch sees a GPU");
  if (name == "cuda") {
    check(index < cuda_devices,
          key + ": this is rank " + std::to_string(local_rank) +
              " on its machine (LOCAL_RANK) but " + std::to_string(cuda_devices) +
              " CUDA device(s) are visible: start at most that many ranks per machine "
              "(--nproc_per_node), or check CUDA_VISIBLE_DEVICES");
  } else {
    check(index < cuda_devices, key + ": no such GPU: " + std::to_string(cuda_devices) +
                                    " CUDA device(s) are visible (cuda:0 to cuda:" +
                                    std::to_string(cuda_devices - 1) + ")");
  }
  return {torch::kCUDA, static_cast<c10::DeviceIndex>(index)};
}

torch::Device run_device(const config::Config& c, int local_rank, int world_size) {
  return resolve_device(c, local_rank, world_size, static_cast<int>(torch::cuda::device_count()));
}

void make_current(const torch::Device& device) {
  if (device.is_cpu()) return;
  c10::impl::getDeviceGuardImpl(device.type())->setDevice(device);
}

double peak_memory_mb(const torch::Device& device) {
#ifdef FOCALDET_WITH_CUDA
  if (device.is_cuda()) {
    namespace allocator = c10::cuda::CUDACachingAllocator;
    const allocator::DeviceStats stats = allocator::getDeviceStats(device.index());
    const auto aggregate = static_cast<size_t>(allocator::StatType::AGGREGATE);
    return static_cast<double>(stats.allocated_bytes[aggregate].peak) / (1024.0 * 1024.0);
  }
#else
  (void)device;
#endif
  return peak_memory_mb();
}

}  // namespace focaldet::train
