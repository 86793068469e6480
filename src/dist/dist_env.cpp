#include "dist/dist_env.h"

#include <charconv>
#include <cstdlib>

#include "common/error.h"

namespace focaldet::dist {
namespace {

struct Var {
  std::string name;
  std::optional<std::string> value;
  bool set() const { return value.has_value(); }
};

Var get(const EnvLookup& lookup, const std::string& name) {
  std::optional<std::string> v = lookup(name);
  if (v && v->empty()) v.reset();
  return {name, v};
}

std::string shown(const Var& v) { return v.name + "='" + v.value.value_or("") + "'"; }

// A whole decimal number, nothing else around it.
long long parse_int(const Var& v) {
  const std::string& s = *v.value;
  long long out = 0;
  const char* first = s.data();
  const char* last = s.data() + s.size();
  if (first != last && *first == '+') ++first;
  const auto [end, ec] = std::from_chars(first, last, out);
  check(ec != std::errc::result_out_of_range, shown(v) + " is out of range");
  check(ec == std::errc() && end == last && first != last, shown(v) + " is not a whole number");
  return out;
}

int parse_at_least(const Var& v, long long min) {
  const long long n = parse_int(v);
  check(n >= min && n <= 1'000'000,
        shown(v) + " must be a number from " + std::to_string(min) + " to 1000000");
  return static_cast<int>(n);
}

bool parse_bool(const Var& v) {
  const std::string& s = *v.value;
  if (s == "True" || s == "true" || s == "1") return true;
  if (s == "False" || s == "false" || s == "0") return false;
  throw Error(shown(v) + " must be True or False");
}

}  // namespace

DistEnv read_dist_env() {
  return read_dist_env([](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  });
}

DistEnv read_dist_env(const EnvLookup& lookup) {
  DistEnv env;
  Var rank = get(lookup, "RANK"), world = get(lookup, "WORLD_SIZE");
  Var local_rank = get(lookup, "LOCAL_RANK"), local_world = get(lookup, "LOCAL_WORLD_SIZE");
  // SLURM's names stand in only for a launcher that set none of torch's: RANK and WORLD_SIZE
  // come as a pair from one launcher.
  if (!rank.set() && !world.set()) {
    Var procid = get(lookup, "SLURM_PROCID"), ntasks = get(lookup, "SLURM_NTASKS");
    if (procid.set() || ntasks.set()) {
      rank = procid;
      world = ntasks;
      if (!local_rank.set()) local_rank = get(lookup, "SLURM_LOCALID");
    }
  }
  if (!rank.set() && !world.set()) return env;  // not launched as a worker: one process
  check(rank.set(), world.name + " is set (" + shown(world) + ") but " + rank.name +
                        " is not: a distributed worker needs both");
  check(world.set(), rank.name + " is set (" + shown(rank) + ") but " + world.name +
                         " is not: a distributed worker needs both");
  env.source = rank.name + "/" + world.name;
  env.world_size = parse_at_least(world, 1);
  env.rank = parse_at_least(rank, 0);
  check(env.rank < env.world_size, shown(rank) + " must be below " + shown(world) +
                                       " (ranks are 0.." + std::to_string(env.world_size - 1) +
                                       ")");

  env.local_world_size = local_world.set() ? parse_at_least(local_world, 1) : env.world_size;
  check(env.local_world_size <= env.world_size,
        shown(local_world) + " cannot exceed " + shown(world));
  // Without LOCAL_RANK the processes are taken to share one machine.
  env.local_rank = local_rank.set() ? parse_at_least(local_rank, 0) : env.rank;
  check(env.local_rank < env.local_world_size,
        (local_rank.set() ? shown(local_rank) : "rank " + std::to_string(env.local_rank)) +
            " must be below the processes on this machine (" +
            (local_world.set() ? shown(local_world) : shown(world)) + ")");

  const Var agent = get(lookup, "TORCHELASTIC_USE_AGENT_STORE");
  env.use_agent_store = agent.set() && parse_bool(agent);
  const Var restarts = get(lookup, "TORCHELASTIC_RESTART_COUNT");
  if (restarts.set()) env.restart_count = parse_at_least(restarts, 0);

  if (env.world_size == 1) return env;
  const Var addr = get(lookup, "MASTER_ADDR"), port = get(lookup, "MASTER_PORT");
  check(addr.set(), shown(world) +
                        " but MASTER_ADDR is not set: it names the host of the "
                        "rendezvous store (rank 0's host, e.g. 127.0.0.1)");
  check(port.set(), shown(world) +
                        " but MASTER_PORT is not set: it names the port of the "
                        "rendezvous store (e.g. 29500)");
  env.master_addr = *addr.value;
  const long long p = parse_int(port);
  check(p >= 1 && p <= 65535, shown(port) + " must be a port number from 1 to 65535");
  env.master_port = static_cast<int>(p);
  return env;
}

std::string describe(const DistEnv& env) {
  if (!env.distributed()) return "single process";
  return "rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size) + " (" +
         env.source + ", store " + env.master_addr + ":" + std::to_string(env.master_port) +
         (env.use_agent_store ? ", torchrun's agent store" : "") + ")";
}

}  // namespace focaldet::dist
