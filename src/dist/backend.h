#pragma once
// Which c10d backend carries the collectives (config key dist.backend, docs/distributed.md):
// Gloo (TCP, CPU tensors) or NCCL (CUDA tensors, one GPU per rank). Torch-free.
//
// - "gloo": always available.
// - "nccl": only in a binary built with NCCL (cmake -DFOCALDET_CUDA=ON against a CUDA LibTorch,
//   which compiles focaldet_dist with FOCALDET_WITH_NCCL), and only when training runs on CUDA
//   (the model's parameters on the rank's GPU, cuda:LOCAL_RANK). Anything else is an error
//   naming the key.
// - "auto" (the default): nccl when both hold, else gloo. On Debian's CPU-only LibTorch, gloo.
#include <string>

namespace focaldet::dist {

enum class Backend { gloo, nccl };

// "gloo" or "nccl".
const char* backend_name(Backend backend);

// Whether this binary's focaldet_dist was compiled with the NCCL process group
// (FOCALDET_WITH_NCCL).
bool built_with_nccl();

// The backend for `requested` ("auto", "gloo" or "nccl"). Throws focaldet::Error whose message
// starts with `origin` (the key's file:line, config::where) and names dist.backend when
// `requested` is unknown, or is "nccl" without NCCL support or without CUDA training.
Backend select_backend(const std::string& requested, bool training_on_cuda, bool nccl_built,
                       const std::string& origin = "");
// The same for this binary (nccl_built = built_with_nccl()).
Backend select_backend(const std::string& requested, bool training_on_cuda,
                       const std::string& origin = "");

}  // namespace focaldet::dist
