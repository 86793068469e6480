#pragma once
// The distributed context of a training run: this process's rank, and collectives over a c10d
// process group (LibTorch's engine): Gloo (CPU tensors over TCP), or NCCL (CUDA tensors on
// cuda:LOCAL_RANK) in a binary built with FOCALDET_WITH_NCCL (see backend.h). With world size 1
// nothing is built and every collective is the identity, so the trainer calls them
// unconditionally.
//
// Every collective stages its data on device() (the CPU for Gloo, the rank's GPU for NCCL), so
// callers pass host values (all_reduce_sum, all_gather_bytes) or tensors on any device
// (broadcast) whatever the backend; only all_reduce_sum_async takes its buffer as it is, and
// that buffer must be on device().
//
// Rendezvous, as torch.distributed's env:// does it:
// - under torchrun (TORCHELASTIC_USE_AGENT_STORE=True) the agent hosts the TCPStore at
//   MASTER_ADDR:MASTER_PORT; every rank connects as a client and works under the prefix
//   "/worker/attempt_<TORCHELASTIC_RESTART_COUNT>";
// - otherwise (focaldet train --nproc, srun) rank 0 hosts the TCPStore and the others connect.
// Gloo listens on the local address that routes to MASTER_ADDR (127.0.0.1 for a local run), or
// on the interface GLOO_SOCKET_IFNAME names.
//
// Failures: every collective waits at most `timeout_seconds` (setup: `setup_timeout_seconds`). A
// peer that dies closes its connections, and the collective fails at once; one that hangs makes it
// time out. Either way the call throws focaldet::Error naming the operation, this rank, and the
// peer when it can be told (see describe_collective_failure).
#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <vector>

#include "dist/backend.h"
#include "dist/dist_env.h"

namespace focaldet::dist {

struct DistOptions {
  // Every collective. torch.distributed's default is 30 min; the slowest rank's step (and its
  // evaluation, while the others wait in the next collective) must fit within it.
  double timeout_seconds = 1800;
  // Connecting to the store and to every rank at setup (ranks start at different moments);
  // 0: timeout_seconds.
  double setup_timeout_seconds = 0;
  // select_backend()'s choice. nccl in a binary without FOCALDET_WITH_NCCL is an Error.
  // NCCL: rank r uses GPU LOCAL_RANK (set as the current CUDA device here), and its waits
  // block with the timeout above (NCCL_BLOCKING_WAIT=1 unless NCCL_BLOCKING_WAIT or
  // NCCL_ASYNC_ERROR_HANDLING is set), so that a failure is an Error as with Gloo.
  Backend backend = Backend::gloo;
};

// A collective in flight (all_reduce_sum_async). wait() blocks until it is done and throws
// focaldet::Error when it failed; waiting twice is a no-op. An empty handle is done.
class PendingCollective {
 public:
  PendingCollective();
  ~PendingCollective();
  PendingCollective(PendingCollective&&) noexcept;
  PendingCollective& operator=(PendingCollective&&) noexcept;
  void wait();
  bool pending() const;

 private:
  friend class Distributed;
  struct State;
  std::unique_ptr<State> state_;
};

class Distributed {
 public:
  // Builds the store and the process group (options.backend) for env.world_size > 1 (Gloo: blocks
  // until every rank has joined, at most the setup timeout; NCCL connects the ranks at the first
  // collective); nothing for world size 1. Throws focaldet::Error naming the store address and
  // what failed.
  explicit Distributed(const DistEnv& env, const DistOptions& options = {});
  // From the process environment (read_dist_env()).
  Distributed();
  ~Distributed();
  Distributed(const Distributed&) = delete;
  Distributed& operator=(const Distributed&) = delete;

  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }
  int local_rank() const { return env_.local_rank; }
  bool is_main() const { return env_.rank == 0; }
  bool enabled() const { return env_.world_size > 1; }
  const DistEnv& env() const { return env_; }
  double timeout_seconds() const { return options_.timeout_seconds; }
  Backend backend() const { return options_.backend; }
  // Where the collectives' tensors live: CPU for Gloo, cuda:LOCAL_RANK for NCCL.
  at::Device device() const;

  // Overwrites every tensor with rank `root`'s values (parameters and buffers at the start,
  // so that every rank begins from the same model). Tensors of any shape and dtype, on any
  // device; they are packed into one buffer per dtype on device(), so the call costs one
  // collective per dtype. Writes bypass autograd (parameters that require grad are fine).
  void broadcast(std::vector<at::Tensor>& tensors, int root = 0);

  // values[i] becomes the sum of values[i] over all ranks (counts, loss sums), in double.
  // Every rank must pass the same number of values.
  void all_reduce_sum(std::vector<double>& values);

  // Returns when every rank has called it.
  void barrier();

  // Every rank's `bytes`, by rank (this rank's own at index rank()). Lengths may differ.
  std::vector<std::string> all_gather_bytes(const std::string& bytes);

  // Starts summing `buffer` (a contiguous tensor on device()) in place across ranks and returns at
  // once; `what` names it in a failure ("all-reduce of gradient bucket 2 of 5"). The buffer
  // must stay alive and untouched until wait(). World size 1: returns a done handle.
  PendingCollective all_reduce_sum_async(const at::Tensor& buffer, const std::string& what);

  struct Group;  // the c10d store and process group, opaque (distributed.cpp)

 private:
  DistEnv env_;
  DistOptions options_;
  std::shared_ptr<Group> group_;
};

// The message a failed collective becomes: what failed on which rank, and why in words, from
// Gloo's own message (kept at the end): "rank 1 closed its connection (it exited or was
// killed)" when the closed connection's address names a peer, "a peer rank stopped
// responding" when not, "no answer within T s" for a timeout. `peer_addresses[r]` is the
// "host:port" rank r's Gloo device listens on, or empty when unknown.
std::string describe_collective_failure(const std::string& what, int rank, int world_size,
                                        double timeout_seconds, const std::string& gloo_message,
                                        const std::vector<std::string>& peer_addresses);

}  // namespace focaldet::dist
