#include "dist/gradient_reducer.h"

#include <ATen/ops/zeros.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <cstdio>
#include <string>

#include "common/error.h"
#include "dist/distributed.h"

namespace focaldet::dist {

struct GradientReducer::State {
  struct Slot {
    at::Tensor param;
    int bucket = 0;
    at::Tensor grad_view;  // the param-shaped view of its bucket's buffer
    at::Tensor used;       // one element: 1 when this rank has a gradient for it this step
    bool ready = false;    // its gradient is in the buffer (this step)
  };
  struct Bucket {
    std::vector<int> slots;
    // [grads of all slots | one "used" flag per slot], allocated once on the parameters'
    // device (for NCCL, the rank's GPU: Distributed::device()).
    at::Tensor buffer;
    at::Tensor grads;  // the gradient part of buffer
    int64_t bytes = 0;
    int ready = 0;
    bool started = false;
    PendingCollective pending;
  };

  Distributed* dist = nullptr;
  std::vector<Slot> slots;
  std::vector<Bucket> buckets;
  int next_to_start = 0;  // buckets start in order: Gloo matches collectives by order
  int started_in_backward = 0;
  int last_started_in_backward = 0;
  int produced_twice = -1;  // a parameter whose gradient arrived twice this step
  std::vector<std::pair<std::shared_ptr<torch::autograd::Node>, uintptr_t>> hooks;

  // Copies the parameter's gradient (zeros without one) into its bucket.
  void pack(Slot& s) {
    const at::Tensor& grad = s.param.grad();
    if (grad.defined()) {
      s.grad_view.copy_(grad);
      s.used.fill_(1);
    } else {
      s.grad_view.zero_();
      s.used.zero_();
    }
    s.ready = true;
  }

  void start(int k) {
    Bucket& b = buckets[k];
    char what[160];
    std::snprintf(what, sizeof what, "all-reduce of gradient bucket %d of %d (%.1f MB)", k + 1,
                  static_cast<int>(buckets.size()), static_cast<double>(b.bytes) / (1 << 20));
    b.pending = dist->all_reduce_sum_async(b.buffer, what);
    b.started = true;
  }

  // The accumulator post-hook: backward has just accumulated parameter i's gradient.
  void on_gradient(int i) {
    Slot& s = slots[i];
    if (s.ready) {
      produced_twice = i;  // reported by synchronize(); the bucket may already be in flight
      return;
    }
    c10::NoGradGuard no_grad;
    pack(s);
    ++buckets[s.bucket].ready;
    while (next_to_start < static_cast<int>(buckets.size()) &&
           buckets[next_to_start].ready == static_cast<int>(buckets[next_to_start].slots.size())) {
      start(next_to_start++);
      ++started_in_backward;
    }
  }

  // Waits for everything in flight and makes the buckets ready for the next step.
  void reset() {
    for (Bucket& b : buckets) {
      b.pending = PendingCollective();  // waits
      b.ready = 0;
      b.started = false;
    }
    for (Slot& s : slots) s.ready = false;
    next_to_start = 0;
    last_started_in_backward = started_in_backward;
    started_in_backward = 0;
    produced_twice = -1;
  }
};

GradientReducer::GradientReducer(Distributed& dist, const std::vector<at::Tensor>& parameters,
                                 const GradientReducerOptions& options)
    : dist_(dist) {
  check(options.bucket_mb > 0,
        "gradient bucket size must be positive, not " + std::to_string(options.bucket_mb) + " MB");
  state_ = std::make_shared<State>();
  state_->dist = &dist;
  if (!dist.enabled()) return;
  // The buckets live on the parameters' device, and the process group reduces them there.
  for (const at::Tensor& p : parameters) {
    check(!p.requires_grad() || p.device() == dist.device(),
          std::string("gradient reducer: a parameter is on ") + p.device().str() + ", but the " +
              backend_name(dist.backend()) + " process group reduces tensors on " +
              dist.device().str() + " (Gloo: the CPU; NCCL: cuda:LOCAL_RANK)");
  }
  std::vector<int> order;  // reverse parameter order: backward produces the last layers first
  for (int i = static_cast<int>(parameters.size()) - 1; i >= 0; --i) {
    if (parameters[i].requires_grad()) order.push_back(i);
  }
  const auto cap = static_cast<int64_t>(options.bucket_mb * 1024 * 1024);
  std::vector<std::vector<int>> groups;  // parameter indices per bucket
  int64_t group_bytes = 0;
  for (int i : order) {
    const at::Tensor& p = parameters[i];
    check(p.is_leaf(), "gradient reducer: parameter " + std::to_string(i) +
                           " is not a leaf tensor (the model's parameters are)");
    const int64_t bytes = p.numel() * static_cast<int64_t>(p.element_size());
    if (!groups.empty() && (parameters[groups.back().front()].scalar_type() != p.scalar_type() ||
                            group_bytes + bytes > cap)) {
      groups.emplace_back();
      group_bytes = 0;
    }
    if (groups.empty()) groups.emplace_back();
    groups.back().push_back(i);
    group_bytes += bytes;
  }

  State& st = *state_;
  for (const std::vector<int>& group : groups) {
    State::Bucket b;
    int64_t numel = 0;
    for (int i : group) numel += parameters[i].numel();
    const auto n_slots = static_cast<int64_t>(group.size());
    // Zeroed (touched) now, so that the first step pays no page faults for it.
    b.buffer = at::zeros({numel + n_slots}, parameters[group[0]].options().requires_grad(false));
    b.grads = b.buffer.narrow(0, 0, numel);
    b.bytes = numel * static_cast<int64_t>(b.buffer.element_size());
    int64_t offset = 0;
    for (int64_t k = 0; k < n_slots; ++k) {
      const at::Tensor& p = parameters[group[k]];
      State::Slot s;
      s.param = p;
      s.bucket = static_cast<int>(st.buckets.size());
      s.grad_view = b.buffer.narrow(0, offset, p.numel()).view(p.sizes());
      s.used = b.buffer.narrow(0, numel + k, 1);
      offset += p.numel();
      b.slots.push_back(static_cast<int>(st.slots.size()));
      st.slots.push_back(std::move(s));
    }
    st.buckets.push_back(std::move(b));
  }

  if (!options.overlap) return;
  // The post-hook of a leaf's AccumulateGrad node runs once per backward, after the gradient
  // (summed over every use of the parameter) has been accumulated into .grad. A hook on the
  // tensor itself (Tensor::register_hook) would run before accumulation, on the increment only.
  // The nodes are held here: autograd keeps only a weak reference, and a node re-created at
  // the next forward would have lost the hook.
  const std::weak_ptr<State> weak = state_;
  for (int i = 0; i < static_cast<int>(st.slots.size()); ++i) {
    std::shared_ptr<torch::autograd::Node> accumulator =
        torch::autograd::impl::grad_accumulator(st.slots[i].param);
    const uintptr_t key =
        accumulator->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
            [weak, i](const torch::autograd::variable_list& outputs,
                      const torch::autograd::variable_list& /*inputs*/) {
              if (const std::shared_ptr<State> s = weak.lock()) s->on_gradient(i);
              return outputs;
            }));
    st.hooks.emplace_back(std::move(accumulator), key);
  }
}

GradientReducer::~GradientReducer() {
  for (auto& [node, key] : state_->hooks) node->del_post_hook(key);
  state_->reset();
}

void GradientReducer::synchronize() {
  State& st = *state_;
  if (!dist_.enabled()) return;
  if (st.produced_twice >= 0) {
    const int i = st.produced_twice;
    st.reset();
    throw Error("gradient reducer: a gradient (parameter " + std::to_string(i) +
                ") was produced twice before synchronize(); with overlap every backward must be "
                "followed by synchronize() (accumulate over several backwards with overlap off)");
  }
  try {
    c10::NoGradGuard no_grad;
    // Buckets backward did not complete (all of them without overlap), in order.
    for (int k = st.next_to_start; k < static_cast<int>(st.buckets.size()); ++k) {
      for (int i : st.buckets[k].slots) {
        if (!st.slots[i].ready) st.pack(st.slots[i]);
      }
      st.start(k);
    }
    st.next_to_start = static_cast<int>(st.buckets.size());
    const double world = dist_.world_size();
    for (State::Bucket& b : st.buckets) {
      b.pending.wait();
      b.grads.div_(world);
      // The "used" flags, read on the host at once (one copy per bucket from a GPU).
      const int64_t n_slots = static_cast<int64_t>(b.slots.size());
      const at::Tensor used =
          b.buffer.narrow(0, b.grads.numel(), n_slots).to(at::kCPU, at::kDouble).contiguous();
      const double* used_by = used.data_ptr<double>();
      for (int64_t k = 0; k < n_slots; ++k) {
        State::Slot& s = st.slots[b.slots[k]];
        if (used_by[k] == 0) continue;  // no rank has a gradient: leave it undefined
        if (s.param.grad().defined()) {
          s.param.grad().copy_(s.grad_view);
        } else {
          s.param.mutable_grad() = s.grad_view.clone();
        }
      }
    }
  } catch (...) {
    st.reset();
    throw;
  }
  st.reset();
}

int GradientReducer::num_buckets() const { return static_cast<int>(state_->buckets.size()); }

std::vector<int64_t> GradientReducer::bucket_sizes() const {
  std::vector<int64_t> sizes;
  for (const State::Bucket& b : state_->buckets) sizes.push_back(b.grads.numel());
  return sizes;
}

int GradientReducer::buckets_started_in_backward() const {
  return state_->last_started_in_backward;
}

}  // namespace focaldet::dist
