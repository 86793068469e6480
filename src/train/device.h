#pragma once
// The device a run computes on (config key run.device, config/config.h): the CPU or one CUDA
// GPU. The trainer moves the model there before it builds the optimizer and picks the
// data-parallel backend (dist.backend auto: NCCL on CUDA in a build with NCCL); each batch, its
// anchors, the assignment and the losses follow (Detector::to); checkpoints are written as CPU
// tensors and loaded onto the model's device (checkpoint.h). The CPU path is the same code, and
// a CPU-only LibTorch compiles all of it.
#include <torch/types.h>

#include "config/config.h"

namespace focaldet::train {

// run.device as a device, for a process that is data-parallel rank `local_rank` of
// `world_size` on its machine and sees `cuda_devices` CUDA devices:
// - "cpu": the CPU;
// - "cuda": cuda:local_rank, one GPU per rank (cuda:0 for one process), as NCCL wants;
// - "cuda:N": that GPU, for one process (several ranks on one GPU cannot use NCCL).
// Throws focaldet::Error starting with the key's file:line (config::where) when CUDA cannot
// run (cuda_devices is 0: a CPU-only LibTorch, or no GPU or driver), when the GPU does not
// exist, or for cuda:N with several ranks.
torch::Device resolve_device(const config::Config& config, int local_rank, int world_size,
                             int cuda_devices);

// resolve_device with the CUDA devices this process sees (torch::cuda::device_count(), 0 in a
// CPU-only LibTorch).
torch::Device run_device(const config::Config& config, int local_rank = 0, int world_size = 1);

// Makes a CUDA `device` this thread's current device (as NCCL's setup does for its rank), so
// that nothing of this process lands on cuda:0 by default. Nothing for the CPU.
void make_current(const torch::Device& device);

// metrics.jsonl's peak_mem_mb: on a CUDA device, the peak of the memory its caching allocator
// handed to tensors (torch.cuda.max_memory_allocated), in a build with FOCALDET_WITH_CUDA
// (cmake -DFOCALDET_CUDA=ON); otherwise the process's peak resident memory (peak_memory_mb()).
double peak_memory_mb(const torch::Device& device);

}  // namespace focaldet::train
