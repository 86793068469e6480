#pragma once
// Where this process stands in a distributed run, read from the environment the launchers set:
// torchrun (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT,
// TORCHELASTIC_USE_AGENT_STORE, TORCHELASTIC_RESTART_COUNT), `focaldet train --nproc N`
// (the same names, see launcher.h), or SLURM's srun (SLURM_PROCID, SLURM_NTASKS,
// SLURM_LOCALID, used only where RANK, WORLD_SIZE, LOCAL_RANK are absent). Torch-free.
#include <functional>
#include <optional>
#include <string>

namespace focaldet::dist {

struct DistEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;        // rank among the processes on this machine
  int local_world_size = 1;  // processes on this machine
  std::string master_addr;   // host of the rendezvous TCPStore; empty when world_size is 1
  int master_port = 0;
  // torchrun's agent already hosts the TCPStore at master_addr:master_port: every rank is a
  // client and keys live under "/worker/attempt_<restart_count>" (as torch.distributed does).
  bool use_agent_store = false;
  int restart_count = 0;
  // Which variables gave rank and world size, for messages: "RANK/WORLD_SIZE",
  // "SLURM_PROCID/SLURM_NTASKS", or "" when none were set (world size 1).
  std::string source;

  bool distributed() const { return world_size > 1; }
};

// Looks a variable up; nullopt when it is not set. An empty value counts as not set.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

// Reads the process environment (getenv). Throws focaldet::Error naming the variable for a
// value that is not a number, out of range (RANK >= WORLD_SIZE, a port outside 1..65535, ...),
// or missing where another needs it (WORLD_SIZE without RANK, MASTER_ADDR or MASTER_PORT
// when WORLD_SIZE > 1). Nothing set at all: world size 1, rank 0.
DistEnv read_dist_env();
DistEnv read_dist_env(const EnvLookup& lookup);

// "rank 1 of 4 (RANK/WORLD_SIZE, store 10.0.0.1:29500)" or "single process".
std::string describe(const DistEnv& env);

}  // namespace focaldet::dist
