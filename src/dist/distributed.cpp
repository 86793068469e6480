#include "dist/distributed.h"

#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/full.h>
#include <ATen/ops/zeros.h>
#include <c10/core/GradMode.h>
#include <c10/util/Exception.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <regex>
#include <sstream>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "common/error.h"

// The NCCL process group (cmake -DFOCALDET_CUDA=ON; scripts/check_nccl_compile.sh compiles this
// branch on a CPU-only machine). USE_C10D_NCCL comes from a CUDA LibTorch's CMake targets; the
// c10d NCCL header is empty without it.
#ifdef FOCALDET_WITH_NCCL
#ifndef USE_C10D_NCCL
#error "FOCALDET_WITH_NCCL needs a LibTorch with NCCL (its targets define USE_C10D_NCCL)"
#endif
#include <c10/cuda/CUDAFunctions.h>

#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace focaldet::dist {
namespace {

// The text of an exception without LibTorch's C++ backtrace (c10::Error appends one).
std::string message_of(const std::exception& e) {
  if (const auto* c10 = dynamic_cast<const c10::Error*>(&e)) return c10->what_without_backtrace();
  return e.what();
}

std::chrono::milliseconds to_ms(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(std::max(0.001, seconds) * 1000.0));
}

std::string seconds_text(double seconds) {
  std::ostringstream s;
  s << seconds << " s";
  return s.str();
}

// The local IP address on the route to `host` (no packet is sent: connect() on a UDP socket
// only picks the route), so that Gloo listens where the other ranks can reach it. "" when the
// host does not resolve.
std::string local_address_towards(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0) return "";
  std::string address;
  for (addrinfo* a = found; a != nullptr && address.empty(); a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) continue;
    sockaddr_storage self{};
    socklen_t length = sizeof self;
    char text[NI_MAXHOST] = {};
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&self), &length) == 0 &&
        getnameinfo(reinterpret_cast<sockaddr*>(&self), length, text, sizeof text, nullptr, 0,
                    NI_NUMERICHOST) == 0) {
      address = text;
    }
    ::close(fd);
  }
  freeaddrinfo(found);
  return address;
}

// ProcessGroupGloo keeps its Gloo context protected; the addresses of its connections are what
// a peer's error message names, so they are read here to tell which rank failed.
class GlooGroup : public c10d::ProcessGroupGloo {
 public:
  using c10d::ProcessGroupGloo::ProcessGroupGloo;
  // The address this rank's connection to `peer` has, as Gloo prints it ("[127.0.0.1]:4242").
  // The timeout of every later collective (Gloo reads it from its contexts at each call).
  void set_collective_timeout(std::chrono::milliseconds timeout) {
    for (const auto& context : contexts_) context->setTimeout(timeout);
  }
  std::string address_towards(int peer) const {
    if (contexts_.empty() || !contexts_[0]) return "";
    const auto& pair = contexts_[0]->getPair(peer);
    return pair ? pair->address().str() : "";
  }
};

}  // namespace

struct Distributed::Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroup> pg;  // the Gloo or NCCL group
  c10::intrusive_ptr<GlooGroup> gloo;         // pg as Gloo's (null for NCCL)
  Backend backend = Backend::gloo;
  at::Device device = at::Device(at::kCPU);  // where every collective's tensors live
  int rank = 0;
  int world_size = 1;
  double timeout_seconds = 0;
  // addresses[r]: how rank r appears in this rank's Gloo messages ("" for this rank).
  std::vector<std::string> addresses;

  [[noreturn]] void fail(const std::string& what, const std::exception& e) const {
    if (backend == Backend::nccl) {
      // NCCL's errors name no peer: a timeout (NCCL_BLOCKING_WAIT) or a communicator error.
      throw Error(what + " failed on rank " + std::to_string(rank) + " of " +
                  std::to_string(world_size) + ": a peer rank exited, hung or failed (timeout " +
                  seconds_text(timeout_seconds) + ") [nccl: " + message_of(e) + "]");
    }
    throw Error(describe_collective_failure(what, rank, world_size, timeout_seconds, message_of(e),
                                            addresses));
  }
  // `host` as a tensor on `device` (itself for the CPU).
  at::Tensor to_device(const at::Tensor& host) const {
    return device.is_cpu() ? host : host.to(device);
  }
  void run(const std::string& what, const c10::intrusive_ptr<c10d::Work>& work) const {
    try {
      work->wait();
    } catch (const std::exception& e) {
      fail(what, e);
    }
  }
  // Starts a collective and waits for it. Starting can throw too: NCCL sets up its
  // communicator (through the store) at the first collective on a device.
  template <typename Start>
  void run(const std::string& what, const Start& start) const {
    c10::intrusive_ptr<c10d::Work> work;
    try {
      work = start();
    } catch (const std::exception& e) {
      fail(what, e);
    }
    run(what, work);
  }
};

struct PendingCollective::State {
  c10::intrusive_ptr<c10d::Work> work;
  std::string what;
  std::shared_ptr<const Distributed::Group> group;
};

PendingCollective::PendingCollective() = default;
PendingCollective::~PendingCollective() {
  // A collective abandoned in flight (an exception elsewhere) must not outlive its buffer's
  // users silently: wait for it, its error is moot.
  if (state_ && state_->work) {
    try {
      state_->work->wait();
    } catch (...) {
    }
  }
}
PendingCollective::PendingCollective(PendingCollective&&) noexcept = default;
PendingCollective& PendingCollective::operator=(PendingCollective&& other) noexcept {
  if (this != &other) {
    PendingCollective old(std::move(*this));  // waits for what this one held
    state_ = std::move(other.state_);
  }
  return *this;
}
bool PendingCollective::pending() const { return state_ && state_->work; }

void PendingCollective::wait() {
  if (!pending()) return;
  const auto work = std::move(state_->work);
  state_->work.reset();
  state_->group->run(state_->what, work);
}

Distributed::Distributed() : Distributed(read_dist_env()) {}

Distributed::Distributed(const DistEnv& env, const DistOptions& options)
    : env_(env), options_(options) {
  check(options.timeout_seconds > 0 && options.setup_timeout_seconds >= 0,
        "distributed timeouts must be positive, not " + std::to_string(options.timeout_seconds) +
            " and " + std::to_string(options.setup_timeout_seconds) + " s");
#ifndef FOCALDET_WITH_NCCL
  check(options.backend != Backend::nccl,
        "dist.backend: nccl cannot be used: this focaldet was built without NCCL (cmake "
        "-DFOCALDET_CUDA=ON against a CUDA LibTorch)");
#endif
  if (env_.world_size <= 1) return;
  auto group = std::make_shared<Group>();
  group->backend = options_.backend;
  group->rank = env_.rank;
  group->world_size = env_.world_size;
  group->timeout_seconds = options_.timeout_seconds;
  const double setup_seconds = options_.setup_timeout_seconds > 0 ? options_.setup_timeout_seconds
                                                                  : options_.timeout_seconds;
  const std::chrono::milliseconds timeout = to_ms(setup_seconds);
  const std::string where = describe(env_);
  std::string step = "connecting to the rendezvous store";
  try {
    c10d::TCPStoreOptions store_options;
    store_options.port = static_cast<std::uint16_t>(env_.master_port);
    store_options.numWorkers = env_.world_size;
    store_options.timeout = timeout;
    if (env_.use_agent_store) {
      // torchrun's agent hosts the store; a restarted attempt gets fresh keys.
      store_options.isServer = false;
      auto tcp = c10::make_intrusive<c10d::TCPStore>(env_.master_addr, store_options);
      group->store = c10::make_intrusive<c10d::PrefixStore>(
          "/worker/attempt_" + std::to_string(env_.restart_count), tcp);
    } else {
      // Rank 0 hosts the store and waits for every rank to connect, up to the setup timeout
      // (TCPStore then gives up silently; the Gloo connection below fails in its place).
      store_options.isServer = env_.rank == 0;
      if (store_options.isServer) step = "starting the rendezvous store and waiting for ranks";
      group->store = c10::make_intrusive<c10d::TCPStore>(env_.master_addr, store_options);
    }

#ifdef FOCALDET_WITH_NCCL
    if (options_.backend == Backend::nccl) {
      // One GPU per rank: cuda:LOCAL_RANK, made the current device before any communicator
      // exists (ProcessGroupNCCL creates them at the first collective, on its tensors' device).
      step = "selecting CUDA device " + std::to_string(env_.local_rank) + " (LOCAL_RANK)";
      const int gpus = c10::cuda::device_count();
      check(env_.local_rank < gpus,
            "LOCAL_RANK is " + std::to_string(env_.local_rank) + " but this machine shows " +
                std::to_string(gpus) +
                " CUDA device(s): start at most that many ranks per machine "
                "(--nproc_per_node), or check CUDA_VISIBLE_DEVICES");
      c10::cuda::set_device(static_cast<c10::DeviceIndex>(env_.local_rank));
      group->device = at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(env_.local_rank));
      // Without one of these, a wait on a dead or hung peer never returns: blocking wait makes
      // Work::wait() throw after the timeout, as Gloo's does (read by the constructor).
      if (std::getenv(c10d::NCCL_BLOCKING_WAIT) == nullptr &&
          std::getenv(c10d::NCCL_ASYNC_ERROR_HANDLING) == nullptr) {
        ::setenv(c10d::NCCL_BLOCKING_WAIT, "1", 0);
      }
      step = "creating the NCCL process group";
      auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
      nccl_options->timeout = to_ms(options_.timeout_seconds);
      group->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(group->store, env_.rank,
                                                              env_.world_size, nccl_options);
    }
#endif
    if (options_.backend == Backend::gloo) {
      step = "creating the Gloo device";
      auto gloo_options = c10d::ProcessGroupGloo::Options::create(timeout);
      const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
      if (ifname != nullptr && *ifname != '\0') {
        step = std::string("creating the Gloo device on GLOO_SOCKET_IFNAME=") + ifname;
        gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      } else {
        const std::string local = local_address_towards(env_.master_addr, env_.master_port);
        if (!local.empty()) step = "creating the Gloo device on " + local;
        gloo_options->devices.push_back(
            local.empty() ? c10d::ProcessGroupGloo::createDefaultDevice()
                          : c10d::ProcessGroupGloo::createDeviceForHostname(local));
      }
      step = "connecting the Gloo process group to every rank";
      group->gloo =
          c10::make_intrusive<GlooGroup>(group->store, env_.rank, env_.world_size, gloo_options);
      group->gloo->set_collective_timeout(to_ms(options_.timeout_seconds));
      group->pg = group->gloo;
    }
  } catch (const std::exception& e) {
    std::string message = message_of(e);
    while (!message.empty() && (message.back() == '.' || message.back() == '\n')) {
      message.pop_back();
    }
    // Rank 0's store does not fail when ranks are missing (TCPStore's wait for workers gives
    // up silently); the Gloo connection then times out with "Socket Timeout".
    const bool timed_out = message.find("imeout") != std::string::npos ||
                           message.find("imed out") != std::string::npos;
    std::string hint;
    if (timed_out && step == "connecting to the rendezvous store") {
      hint =
          ". Nothing answered at MASTER_ADDR:MASTER_PORT in time: is rank 0 (or torchrun's "
          "agent) running there?";
    } else if (timed_out) {
      hint = ". Not every rank joined in time: are all " + std::to_string(env_.world_size) +
             " ranks started, with the same MASTER_ADDR and MASTER_PORT?";
    }
    throw Error("distributed setup of " + where + " failed while " + step + " (timeout " +
                seconds_text(setup_seconds) + "): " + message + hint);
  }
  group_ = group;
  group->addresses.assign(env_.world_size, "");
  if (!group->gloo) return;

  // Each rank tells the others its connections' addresses, so that a closed connection in a
  // Gloo message can be named by rank.
  std::string mine;
  for (int peer = 0; peer < env_.world_size; ++peer) {
    if (peer != env_.rank)
      mine += std::to_string(peer) + " " + group->gloo->address_towards(peer) + "\n";
  }
  const std::vector<std::string> all = all_gather_bytes(mine);
  for (int r = 0; r < env_.world_size; ++r) {
    std::istringstream lines(all[r]);
    int peer = -1;
    std::string address;
    while (lines >> peer >> address) {
      if (peer == env_.rank) group->addresses[r] = address;
    }
  }
}

Distributed::~Distributed() = default;

at::Device Distributed::device() const { return group_ ? group_->device : at::Device(at::kCPU); }

void Distributed::broadcast(std::vector<at::Tensor>& tensors, int root) {
  if (!enabled()) return;
  check(root >= 0 && root < world_size(), "broadcast: root rank " + std::to_string(root) +
                                              " is not a rank of " + std::to_string(world_size()));
  // Every rank must pass the same shapes, or the packed buffers would not line up: compare
  // them first, so that a config that differs between ranks is an error, not garbage.
  std::string signature;
  for (const at::Tensor& t : tensors) {
    std::ostringstream s;
    s << t.dtype().name() << t.sizes() << ";";
    signature += s.str();
  }
  const std::vector<std::string> signatures = all_gather_bytes(signature);
  for (int r = 0; r < world_size(); ++r) {
    check(signatures[r] == signatures[root],
          "broadcast: rank " + std::to_string(r) + "'s " + std::to_string(tensors.size()) +
              "-tensor list differs from rank " + std::to_string(root) +
              "'s in dtype or shape (do all ranks run the same config?)");
  }
  // One collective per dtype over a packed buffer instead of one per tensor.
  std::map<std::string, std::vector<std::size_t>> by_dtype;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    if (tensors[i].numel() > 0) by_dtype[std::string(tensors[i].dtype().name())].push_back(i);
  }
  c10::NoGradGuard no_grad;
  for (const auto& [dtype_name, indices] : by_dtype) {
    int64_t total = 0;
    for (std::size_t i : indices) total += tensors[i].numel();
    at::Tensor flat = at::empty(
        {total}, tensors[indices[0]].options().device(group_->device).requires_grad(false));
    int64_t offset = 0;
    for (std::size_t i : indices) {
      const int64_t n = tensors[i].numel();
      if (rank() == root) flat.narrow(0, offset, n).copy_(tensors[i].detach().reshape({-1}));
      offset += n;
    }
    std::vector<at::Tensor> one{flat};
    c10d::BroadcastOptions opts;
    opts.rootRank = root;
    group_->run("broadcast of " + std::to_string(indices.size()) + " " + dtype_name +
                    " tensors from rank " + std::to_string(root),
                [&] { return group_->pg->broadcast(one, opts); });
    if (rank() == root) continue;
    offset = 0;
    for (std::size_t i : indices) {
      const int64_t n = tensors[i].numel();
      tensors[i].detach().copy_(flat.narrow(0, offset, n).view(tensors[i].sizes()));
      offset += n;
    }
  }
}

void Distributed::all_reduce_sum(std::vector<double>& values) {
  if (!enabled() || values.empty()) return;
  const at::Tensor host = at::from_blob(values.data(), {static_cast<int64_t>(values.size())},
                                        at::TensorOptions().dtype(at::kDouble));
  // Gloo sums `values` in place; NCCL sums a copy on the GPU, copied back (which waits for it).
  std::vector<at::Tensor> one{group_->to_device(host)};
  group_->run("all-reduce of " + std::to_string(values.size()) + " statistics",
              [&] { return group_->pg->allreduce(one); });
  if (!group_->device.is_cpu()) host.copy_(one[0]);
}

void Distributed::barrier() {
  if (!enabled()) return;
  if (group_->backend == Backend::nccl) {
    // ProcessGroupNCCL::barrier guesses its GPU (rank % GPUs) and does not wait on the host:
    // an all-reduce on this rank's GPU, read back, is a barrier on both counts.
    std::vector<double> one{0};
    all_reduce_sum(one);
    return;
  }
  group_->run("barrier", [&] { return group_->pg->barrier(); });
}

std::vector<std::string> Distributed::all_gather_bytes(const std::string& bytes) {
  if (!enabled()) return {bytes};
  const int n = world_size();
  // Gloo gathers tensors of one size: the lengths first, then every rank's bytes padded to
  // the longest.
  // Staged on device() (the GPU for NCCL) and read back on the host.
  const at::Device device = group_->device;
  std::vector<at::Tensor> length{
      group_->to_device(at::full({1}, static_cast<int64_t>(bytes.size()), at::kLong))};
  std::vector<std::vector<at::Tensor>> lengths(1);
  for (int r = 0; r < n; ++r)
    lengths[0].push_back(at::empty({1}, at::dtype(at::kLong).device(device)));
  group_->run("all-gather of byte lengths", [&] { return group_->pg->allgather(lengths, length); });
  std::vector<int64_t> sizes(n);
  int64_t longest = 1;  // Gloo does not gather empty tensors
  for (int r = 0; r < n; ++r) {
    sizes[r] = lengths[0][r].item<int64_t>();
    longest = std::max(longest, sizes[r]);
  }
  at::Tensor mine_host = at::zeros({longest}, at::kByte);
  std::memcpy(mine_host.data_ptr<uint8_t>(), bytes.data(), bytes.size());
  std::vector<at::Tensor> mine{group_->to_device(mine_host)};
  std::vector<std::vector<at::Tensor>> gathered(1);
  for (int r = 0; r < n; ++r) {
    gathered[0].push_back(at::empty({longest}, at::dtype(at::kByte).device(device)));
  }
  group_->run("all-gather of " + std::to_string(bytes.size()) + " bytes (longest " +
                  std::to_string(longest) + ")",
              [&] { return group_->pg->allgather(gathered, mine); });
  std::vector<std::string> out(n);
  for (int r = 0; r < n; ++r) {
    const at::Tensor part = gathered[0][r].to(at::kCPU);  // itself on the CPU
    out[r].assign(reinterpret_cast<const char*>(part.data_ptr<uint8_t>()),
                  static_cast<std::size_t>(sizes[r]));
  }
  return out;
}

PendingCollective Distributed::all_reduce_sum_async(const at::Tensor& buffer,
                                                    const std::string& what) {
  PendingCollective pending;
  if (!enabled()) return pending;
  check(buffer.is_contiguous() && buffer.device() == group_->device,
        what + ": the buffer must be a contiguous tensor on " + group_->device.str() + " (the " +
            backend_name(group_->backend) + " backend's device), not on " + buffer.device().str());
  std::vector<at::Tensor> one{buffer};
  pending.state_ = std::make_unique<PendingCollective::State>();
  pending.state_->what = what;
  pending.state_->group = group_;
  try {
    pending.state_->work = group_->pg->allreduce(one);
  } catch (const std::exception& e) {
    group_->fail(what, e);
  }
  return pending;
}

std::string describe_collective_failure(const std::string& what, int rank, int world_size,
                                        double timeout_seconds, const std::string& gloo_message,
                                        const std::vector<std::string>& peer_addresses) {
  // Gloo's messages (gloo 0.0~git20220518, as Debian 12 ships it), after a
  // "[./gloo/transport/tcp/pair.cc:598] " source prefix:
  //   peer exited or was killed:  "Connection closed by peer [127.0.0.1]:34979"
  //                               "Read error [127.0.0.1]:52428: Connection reset by peer"
  //   peer alive but silent:      "Timed out waiting 3000ms for recv operation to complete"
  // The address is the peer's end of that connection, which each rank published at setup.
  std::string text = gloo_message;
  static const std::regex source_prefix(R"(^\s*\[[^\]]*\.(cc|cpp|h):\d+\]\s*)");
  text = std::regex_replace(text, source_prefix, "");
  const std::string others = "of world size " + std::to_string(world_size);
  const int only_peer = world_size == 2 ? 1 - rank : -1;
  std::string reason;
  std::smatch address;
  static const std::regex address_pattern(R"(\[[^\]]+\]:\d+)");
  const bool timed_out =
      text.find("Timed out") != std::string::npos || text.find("timed out") != std::string::npos;
  if (std::regex_search(text, address, address_pattern) && !timed_out) {
    int peer = -1;
    for (std::size_t r = 0; r < peer_addresses.size(); ++r) {
      if (!peer_addresses[r].empty() && peer_addresses[r] == address.str()) {
        peer = static_cast<int>(r);
      }
    }
    if (peer < 0) peer = only_peer;
    reason = peer >= 0 ? "rank " + std::to_string(peer) +
                             " closed its connection (it exited, crashed or was killed)"
                       : "a peer rank (" + address.str() + ", " + others +
                             ") closed its connection (it exited, crashed or was killed)";
  } else if (timed_out) {
    reason = (only_peer >= 0 ? "rank " + std::to_string(only_peer)
                             : std::string("a peer rank (") + others + ")") +
             " stopped responding: no answer within the timeout of " +
             seconds_text(timeout_seconds) + " (hung, far slower, or stopped)";
  } else {
    reason = "a peer rank stopped responding (" + others + ", timeout " +
             seconds_text(timeout_seconds) + ")";
  }
  return what + " failed on rank " + std::to_string(rank) + " of " + std::to_string(world_size) +
         ": " + reason + " [gloo: " + text + "]";
}

}  // namespace focaldet::dist
