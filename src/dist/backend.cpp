#include "dist/backend.h"

#include "common/error.h"

namespace focaldet::dist {

const char* backend_name(Backend backend) { return backend == Backend::nccl ? "nccl" : "gloo"; }

bool built_with_nccl() {
#ifdef FOCALDET_WITH_NCCL
  return true;
#else
  return false;
#endif
}

Backend select_backend(const std::string& requested, bool training_on_cuda, bool nccl_built,
                       const std::string& origin) {
  const std::string key = (origin.empty() ? "" : origin + ": ") + "dist.backend: ";
  if (requested == "gloo") return Backend::gloo;
  if (requested == "auto") return nccl_built && training_on_cuda ? Backend::nccl : Backend::gloo;
  check(requested == "nccl", key + "must be one of auto, gloo, nccl; got '" + requested + "'");
  std::string why;
  if (!nccl_built) {
    why =
        "this focaldet was built without NCCL (build it against a CUDA LibTorch with "
        "cmake -DFOCALDET_CUDA=ON)";
  }
  if (!training_on_cuda) {
    why += std::string(why.empty() ? "" : ", and ") +
           "this run trains on the CPU, while NCCL reduces CUDA tensors (run.device: cuda trains "
           "on the GPUs)";
  }
  check(why.empty(), key + "nccl cannot be used: " + why +
                         ". Use gloo, or auto (nccl where it "
                         "can run, else gloo)");
  return Backend::nccl;
}

Backend select_backend(const std::string& requested, bool training_on_cuda,
                       const std::string& origin) {
  return select_backend(requested, training_on_cuda, built_with_nccl(), origin);
}

}  // namespace focaldet::dist
