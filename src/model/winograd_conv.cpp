#include "model/winograd_conv.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include <memory>
#include <mutex>

#include "common/error.h"
#include "model/gemm_winograd.h"

#ifdef FOCALDET_HAVE_ONEDNN
#include <map>
#include <oneapi/dnnl/dnnl.hpp>
#include <tuple>
#include <vector>
#endif

namespace focaldet::model {

namespace {
bool onednn_available();
at::Tensor onednn_conv2d(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);
// WinogradInference on the GEMM path: the weight transformed once per generation.
template <class Impl>
at::Tensor gemm_inference(Impl& impl, const at::Tensor& x, const at::Tensor& weight,
                          const at::Tensor& bias, uint64_t generation, bool relu) {
  if (!gemm_winograd::pays(x.size(0), x.size(1), weight.size(0), x.size(2), x.size(3), false)) {
    at::Tensor y = at::conv2d(x, weight, bias, 1, 1);
    return relu ? y.relu_() : y;
  }
  at::Tensor u;
  {
    std::lock_guard<std::mutex> lock(impl.mu);
    if (!impl.u.defined() || impl.u_generation != generation) {
      impl.u = gemm_winograd::transform_weight(weight.contiguous());
      impl.u_generation = generation;
    }
    u = impl.u;
  }
  return gemm_winograd::forward(x, u, bias, relu);
}

}  // namespace

#ifndef FOCALDET_HAVE_ONEDNN

namespace {
bool onednn_available() { return false; }
at::Tensor onednn_conv2d(const at::Tensor&, const at::Tensor&, const at::Tensor&) {
  throw Error("winograd_conv2d: this build has no oneDNN");
}
}  // namespace
struct WinogradInference::Impl {
  std::mutex mu;
  at::Tensor u;  // the transformed weight
  uint64_t u_generation = 0;
};

at::Tensor WinogradInference::forward(const at::Tensor& x, const at::Tensor& weight,
                                      const at::Tensor& bias, uint64_t generation, bool relu) {
  if (!impl_) impl_ = std::make_shared<Impl>();
  return gemm_inference(*impl_, x, weight, bias, generation, relu);
}

#else

namespace {

using dnnl::memory;
using Tag = memory::format_tag;
constexpr auto kF32 = memory::data_type::f32;
constexpr auto kWinograd = dnnl::algorithm::convolution_winograd;

// The forward and both backward primitives of one shape (n, c, o, h, w).
struct Primitives {
  dnnl::convolution_forward::primitive_desc fwd_pd;
  dnnl::convolution_backward_data::primitive_desc bwd_data_pd;
  dnnl::convolution_backward_weights::primitive_desc bwd_weights_pd;
  dnnl::convolution_forward fwd;
  dnnl::convolution_backward_data bwd_data;
  dnnl::convolution_backward_weights bwd_weights;
};

struct Engine {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  std::mutex mu;
  std::map<std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t>, std::shared_ptr<Primitives> >
      cache;

  std::shared_ptr<Primitives> get(int64_t n, int64_t c, int64_t o, int64_t h, int64_t w) {
    std::lock_guard<std::mutex> lock(mu);
    const auto key = std::make_tuple(n, c, o, h, w);
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
    if (cache.size() >= 64) cache.clear();  // many image sizes: bounded
    const memory::desc src({n, c, h, w}, kF32, Tag::any), dst({n, o, h, w}, kF32, Tag::any);
    const memory::desc wei({o, c, 3, 3}, kF32, Tag::any), bias({o}, kF32, Tag::x);
    const memory::dims one = {1, 1};
    auto p = std::make_shared<Primitives>();
    p->fwd_pd = {{dnnl::prop_kind::forward_training, kWinograd, src, wei, bias, dst, one, one, one},
                 eng};
    p->bwd_data_pd = {{kWinograd, src, wei, dst, one, one, one}, eng, p->fwd_pd};
    p->bwd_weights_pd = {{kWinograd, src, wei, bias, dst, one, one, one}, eng, p->fwd_pd};
    p->fwd = dnnl::convolution_forward(p->fwd_pd);
    p->bwd_data = dnnl::convolution_backward_data(p->bwd_data_pd);
    p->bwd_weights = dnnl::convolution_backward_weights(p->bwd_weights_pd);
    cache.emplace(key, p);
    return p;
  }
};

Engine& engine() {
  static Engine e;
  return e;
}

memory nchw(const at::Tensor& t, const dnnl::engine& eng) {
  return memory({{t.size(0), t.size(1), t.size(2), t.size(3)}, kF32, Tag::nchw}, eng, t.data_ptr());
}
memory oihw(const at::Tensor& t, const dnnl::engine& eng) {
  return memory({{t.size(0), t.size(1), 3, 3}, kF32, Tag::oihw}, eng, t.data_ptr());
}

// `user` in the layout `want`: itself when it already is, else a reordered copy.
memory in_layout(memory user, const memory::desc& want, dnnl::stream& s) {
  if (user.get_desc() == want) return user;
  memory out(want, user.get_engine());
  dnnl::reorder(user, out).execute(s, user, out);
  return out;
}

// Writes `from` (any layout) into the dense tensor's memory `to`.
void store(memory from, memory to, dnnl::stream& s) {
  if (from.get_desc() == to.get_desc()) return;
  dnnl::reorder(from, to).execute(s, from, to);
}

// The forward and backward of both autograd functions below (with and without a bias: autograd
// takes no undefined inputs, so "no bias" is a function of its own).
struct WinogradCore {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x_in,
                            const at::Tensor& weight_in, const at::Tensor& bias_in) {
    const at::Tensor x = x_in.contiguous(), weight = weight_in.contiguous();
    const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3), o = weight.size(0);
    // No bias (a conv before a trained norm): oneDNN adds zeros.
    const at::Tensor bias = bias_in.defined() ? bias_in.contiguous() : at::zeros({o}, x.options());
    Engine& e = engine();
    const auto p = e.get(n, c, o, h, w);
    dnnl::stream s(e.eng);
    at::Tensor y = at::empty({n, o, h, w}, x.options());
    memory src = in_layout(nchw(x, e.eng), p->fwd_pd.src_desc(), s);
    memory wei = in_layout(oihw(weight, e.eng), p->fwd_pd.weights_desc(), s);
    memory bias_mem({{o}, kF32, Tag::x}, e.eng, bias.data_ptr());
    memory y_user = nchw(y, e.eng);
    memory dst =
        p->fwd_pd.dst_desc() == y_user.get_desc() ? y_user : memory(p->fwd_pd.dst_desc(), e.eng);
    p->fwd.execute(s, {{DNNL_ARG_SRC, src},
                       {DNNL_ARG_WEIGHTS, wei},
                       {DNNL_ARG_BIAS, bias_mem},
                       {DNNL_ARG_DST, dst}});
    store(dst, y_user, s);
    s.wait();
    ctx->save_for_backward({x, weight});
    return y;
  }

  // The gradients of x, weight and bias; `bias_grad`: whether a bias was an input.
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads,
                                                 bool bias_grad) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& weight = saved[1];
    const at::Tensor gy = grads[0].contiguous();
    const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3), o = weight.size(0);
    Engine& e = engine();
    const auto p = e.get(n, c, o, h, w);
    dnnl::stream s(e.eng);
    at::Tensor gx, gw, gb;
    if (ctx->needs_input_grad(0)) {
      gx = at::empty_like(x);
      memory diff_dst = in_layout(nchw(gy, e.eng), p->bwd_data_pd.diff_dst_desc(), s);
      memory wei = in_layout(oihw(weight, e.eng), p->bwd_data_pd.weights_desc(), s);
      memory gx_user = nchw(gx, e.eng);
      memory diff_src = p->bwd_data_pd.diff_src_desc() == gx_user.get_desc()
                            ? gx_user
                            : memory(p->bwd_data_pd.diff_src_desc(), e.eng);
      p->bwd_data.execute(
          s,
          {{DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DIFF_SRC, diff_src}});
      store(diff_src, gx_user, s);
    }
    const bool want_bias = bias_grad && ctx->needs_input_grad(2);
    if (ctx->needs_input_grad(1) || want_bias) {
      gw = at::empty_like(weight);
      gb = at::empty({o}, weight.options());
      memory diff_dst = in_layout(nchw(gy, e.eng), p->bwd_weights_pd.diff_dst_desc(), s);
      memory src = in_layout(nchw(x, e.eng), p->bwd_weights_pd.src_desc(), s);
      memory gw_user = oihw(gw, e.eng);
      memory diff_wei = p->bwd_weights_pd.diff_weights_desc() == gw_user.get_desc()
                            ? gw_user
                            : memory(p->bwd_weights_pd.diff_weights_desc(), e.eng);
      memory diff_bias({{o}, kF32, Tag::x}, e.eng, gb.data_ptr());
      p->bwd_weights.execute(s, {{DNNL_ARG_SRC, src},
                                 {DNNL_ARG_DIFF_DST, diff_dst},
                                 {DNNL_ARG_DIFF_WEIGHTS, diff_wei},
                                 {DNNL_ARG_DIFF_BIAS, diff_bias}});
      store(diff_wei, gw_user, s);
    }
    s.wait();
    torch::autograd::variable_list out = {gx, ctx->needs_input_grad(1) ? gw : at::Tensor()};
    if (bias_grad) out.push_back(want_bias ? gb : at::Tensor());
    return out;
  }
};

class WinogradConv : public torch::autograd::Function<WinogradConv> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            const at::Tensor& weight, const at::Tensor& bias) {
    return WinogradCore::forward(ctx, x, weight, bias);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    return WinogradCore::backward(ctx, std::move(grads), true);
  }
};

class WinogradConvNoBias : public torch::autograd::Function<WinogradConvNoBias> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            const at::Tensor& weight) {
    return WinogradCore::forward(ctx, x, weight, at::Tensor());
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    return WinogradCore::backward(ctx, std::move(grads), false);
  }
};

}  // namespace

struct WinogradInference::Impl {
  struct Prim {
    dnnl::convolution_forward::primitive_desc pd;
    dnnl::convolution_forward conv;
    memory weights;
  };
  std::mutex mu;
  uint64_t generation = 0;
  std::map<std::tuple<int64_t, int64_t, int64_t>, Prim> prims;  // by (n, h, w)
  // The transformed weights by layout: oneDNN picks Winograd's weight blocking from the map
  // size, but only a few blockings occur, so images of many sizes share a handful of copies.
  std::vector<memory> weights;
  at::Tensor u;  // the GEMM path's transformed weight (a CPU without oneDNN's Winograd)
  uint64_t u_generation = 0;
};

at::Tensor WinogradInference::forward(const at::Tensor& x_in, const at::Tensor& weight_in,
                                      const at::Tensor& bias_in, uint64_t generation, bool relu) {
  if (!impl_) impl_ = std::make_shared<Impl>();
  if (!onednn_available()) {
    return gemm_inference(*impl_, x_in, weight_in, bias_in, generation, relu);
  }
  if (relu) return forward(x_in, weight_in, bias_in, generation, false).relu_();
  const at::Tensor x = x_in.contiguous(), weight = weight_in.contiguous();
  const at::Tensor bias = bias_in.contiguous();
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3), o = weight.size(0);
  Engine& e = engine();
  dnnl::stream s(e.eng);
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (generation != impl_->generation || impl_->weights.size() >= 4) {
    impl_->prims.clear();
    impl_->weights.clear();
    impl_->generation = generation;
  }
  if (impl_->prims.size() >= 32) impl_->prims.clear();  // many image sizes: bounded
  const auto key = std::make_tuple(n, h, w);
  auto it = impl_->prims.find(key);
  if (it == impl_->prims.end()) {
    const memory::desc src({n, c, h, w}, kF32, Tag::any), dst({n, o, h, w}, kF32, Tag::any);
    const memory::desc wei({o, c, 3, 3}, kF32, Tag::any), b({o}, kF32, Tag::x);
    const memory::dims one = {1, 1};
    dnnl::convolution_forward::primitive_desc pd(
        {dnnl::prop_kind::forward_inference, kWinograd, src, wei, b, dst, one, one, one}, e.eng);
    memory reordered;
    for (const memory& m : impl_->weights) {
      if (m.get_desc() == pd.weights_desc()) reordered = m;
    }
    if (!reordered) {
      reordered = memory(pd.weights_desc(), e.eng);
      memory user = oihw(weight, e.eng);
      dnnl::reorder(user, reordered).execute(s, user, reordered);
      impl_->weights.push_back(reordered);
    }
    it = impl_->prims.emplace(key, Impl::Prim{pd, dnnl::convolution_forward(pd), reordered}).first;
  }
  const Impl::Prim& p = it->second;
  at::Tensor y = at::empty({n, o, h, w}, x.options());
  memory src = in_layout(nchw(x, e.eng), p.pd.src_desc(), s);
  memory bias_mem({{o}, kF32, Tag::x}, e.eng, bias.data_ptr());
  memory y_user = nchw(y, e.eng);
  memory dst = p.pd.dst_desc() == y_user.get_desc() ? y_user : memory(p.pd.dst_desc(), e.eng);
  p.conv.execute(s, {{DNNL_ARG_SRC, src},
                     {DNNL_ARG_WEIGHTS, p.weights},
                     {DNNL_ARG_BIAS, bias_mem},
                     {DNNL_ARG_DST, dst}});
  store(dst, y_user, s);
  s.wait();
  return y;
}

namespace {

bool onednn_available() {
  static const bool ok = [] {
    try {
      (void)engine().get(1, 32, 32, 16, 16);
      return true;
    } catch (const dnnl::error&) {
      return false;
    }
  }();
  return ok;
}

at::Tensor onednn_conv2d(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  return bias.defined() ? WinogradConv::apply(x, weight, bias)
                        : WinogradConvNoBias::apply(x, weight);
}

}  // namespace

#endif

at::Tensor WinogradInference::forward_tracked(const at::Tensor& x, const at::Tensor& weight,
                                              const at::Tensor& bias, bool relu) {
  const std::array<int64_t, 2> versions = {weight._version(),
                                           bias.defined() ? bias._version() : -1};
  const std::array<const void*, 2> storages = {weight.data_ptr(),
                                               bias.defined() ? bias.data_ptr() : nullptr};
  if (versions != versions_ || storages != storages_) {
    versions_ = versions;
    storages_ = storages;
    ++generation_;
  }
  // A conv without bias (before a GroupNorm): oneDNN's primitive here takes one, so zeros.
  return forward(x, weight, bias.defined() ? bias : at::zeros({weight.size(0)}, weight.options()),
                 generation_, relu);
}

bool winograd_training_available() { return true; }  // the GEMM path runs on any CPU

bool winograd_pays(int64_t n, int64_t c, int64_t o, int64_t h, int64_t w, bool backward) {
  return onednn_available() || gemm_winograd::pays(n, c, o, h, w, backward);
}

at::Tensor winograd_conv2d(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  check(x.dim() == 4 && weight.dim() == 4 && weight.size(2) == 3 && weight.size(3) == 3 &&
            weight.size(1) == x.size(1) &&
            (!bias.defined() || (bias.dim() == 1 && bias.size(0) == weight.size(0))),
        "winograd_conv2d: x [N, C, H, W], weight [O, C, 3, 3] and bias [O] (or none) required");
  check(x.scalar_type() == at::kFloat && x.device().is_cpu() && !x.is_mkldnn(),
        "winograd_conv2d: dense float CPU tensors only");
  if (onednn_available()) return onednn_conv2d(x, weight, bias);
  const bool backward =
      at::GradMode::is_enabled() &&
      (x.requires_grad() || weight.requires_grad() || (bias.defined() && bias.requires_grad()));
  if (gemm_winograd::pays(x.size(0), x.size(1), weight.size(0), x.size(2), x.size(3), backward)) {
    return gemm_winograd::conv2d(x, weight, bias);
  }
  return at::conv2d(x, weight, bias, 1, 1);
}

}  // namespace focaldet::model
