#include "model/winograd_head.h"

#include <ATen/ATen.h>

#include "common/error.h"

#ifdef FOCALDET_HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>

#include <array>
#include <map>
#include <mutex>
#include <tuple>
#endif

namespace focaldet::model {

#ifndef FOCALDET_HAVE_ONEDNN

struct WinogradHead::Impl {};
WinogradHead::WinogradHead(std::vector<torch::nn::Conv2d>, torch::nn::Conv2d,
                           std::vector<torch::nn::Conv2d>, torch::nn::Conv2d) {}
bool WinogradHead::available() { return false; }
std::pair<at::Tensor, at::Tensor> WinogradHead::forward(const at::Tensor&, int64_t) {
  throw Error("WinogradHead: this build has no oneDNN");
}

#else

namespace {

using dnnl::memory;
using Tag = memory::format_tag;
constexpr auto kF32 = memory::data_type::f32;

memory::desc conv_weights_desc(const torch::nn::Conv2d& c) {
  return {{c->options.out_channels(), c->options.in_channels(), 3, 3}, kF32, Tag::oihw};
}

// The forward-inference primitive of a 3x3, stride 1, padding 1 conv with bias on [n, ic, h, w],
// Winograd when oneDNN has it for this shape, `relu` fused.
dnnl::convolution_forward::primitive_desc make_conv(const dnnl::engine& eng, int64_t n,
                                                    int64_t ic, int64_t oc, int64_t h, int64_t w,
                                                    bool relu, bool winograd) {
  const memory::desc src({n, ic, h, w}, kF32, Tag::any), dst({n, oc, h, w}, kF32, Tag::any);
  const memory::desc wei({oc, ic, 3, 3}, kF32, Tag::any), bias({oc}, kF32, Tag::x);
  dnnl::primitive_attr attr;
  if (relu) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
    attr.set_post_ops(ops);
  }
  const auto alg =
      winograd ? dnnl::algorithm::convolution_winograd : dnnl::algorithm::convolution_direct;
  const dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, alg, src, wei,
                                          bias, dst, {1, 1}, {1, 1}, {1, 1});
  return {d, attr, eng};
}

}  // namespace

struct WinogradHead::Impl {
  // One conv of the head, with its primitives per input shape and its weights reordered for
  // each; all dropped when the conv's weight or bias changes (version counter or storage).
  struct Layer {
    torch::nn::Conv2d conv{nullptr};
    bool relu = false;
    struct Prim {
      dnnl::convolution_forward::primitive_desc pd;
      dnnl::convolution_forward conv;
      memory weights;
    };
    std::map<std::tuple<int64_t, int64_t, int64_t>, Prim> prims;  // by (n, h, w)
    // The transformed weights by layout (Winograd's blocking follows the map size, but only a
    // few blockings occur): images of many sizes share a handful of copies.
    std::vector<memory> weights;
    std::array<int64_t, 2> versions{};
    std::array<const void*, 2> storages{};
  };

  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  std::vector<Layer> cls, box;  // tower convs, then the output conv
  std::mutex mu;                // primitives and caches are shared by the callers

  const Layer::Prim& prim(Layer& l, int64_t n, int64_t h, int64_t w, dnnl::stream& s) {
    const std::array<const at::Tensor*, 2> src = {&l.conv->weight, &l.conv->bias};
    bool stale = false;
    for (size_t i = 0; i < 2; ++i) {
      stale |= src[i]->_version() != l.versions[i] || src[i]->data_ptr() != l.storages[i];
    }
    if (stale || l.weights.size() >= 4) {
      l.prims.clear();
      l.weights.clear();
      for (size_t i = 0; i < 2; ++i) {
        l.versions[i] = src[i]->_version();
        l.storages[i] = src[i]->data_ptr();
      }
    }
    const auto key = std::make_tuple(n, h, w);
    auto it = l.prims.find(key);
    if (it != l.prims.end()) return it->second;
    if (l.prims.size() >= 32) l.prims.clear();  // many image sizes: bounded
    const int64_t ic = l.conv->options.in_channels(), oc = l.conv->options.out_channels();
    dnnl::convolution_forward::primitive_desc pd;
    try {
      pd = make_conv(eng, n, ic, oc, h, w, l.relu, true);
    } catch (const dnnl::error&) {
      pd = make_conv(eng, n, ic, oc, h, w, l.relu, false);
    }
    memory reordered;
    for (const memory& m : l.weights) {
      if (m.get_desc() == pd.weights_desc()) reordered = m;
    }
    if (!reordered) {
      const at::Tensor wt = l.conv->weight.detach().contiguous();
      memory user(conv_weights_desc(l.conv), eng, wt.data_ptr());
      reordered = memory(pd.weights_desc(), eng);
      dnnl::reorder(user, reordered).execute(s, user, reordered);
      s.wait();
      l.weights.push_back(reordered);
    }
    return l.prims.emplace(key, Layer::Prim{pd, dnnl::convolution_forward(pd), reordered})
        .first->second;
  }

  // One tower on `x` (a oneDNN memory in any layout), written as NHWC into `out`.
  void tower(std::vector<Layer>& layers, memory x, int64_t n, int64_t h, int64_t w,
             at::Tensor& out, dnnl::stream& s) {
    memory cur = x;
    for (size_t i = 0; i < layers.size(); ++i) {
      Layer& l = layers[i];
      const Layer::Prim& p = prim(l, n, h, w, s);
      if (cur.get_desc() != p.pd.src_desc()) {
        memory converted(p.pd.src_desc(), eng);
        dnnl::reorder(cur, converted).execute(s, cur, converted);
        cur = converted;
      }
      const at::Tensor bias = l.conv->bias.detach().contiguous();
      memory bias_mem({{l.conv->options.out_channels()}, kF32, Tag::x}, eng, bias.data_ptr());
      memory dst(p.pd.dst_desc(), eng);
      p.conv.execute(s, {{DNNL_ARG_SRC, cur},
                         {DNNL_ARG_WEIGHTS, p.weights},
                         {DNNL_ARG_BIAS, bias_mem},
                         {DNNL_ARG_DST, dst}});
      cur = dst;
    }
    const int64_t oc = layers.back().conv->options.out_channels();
    out = at::empty({n, h, w, oc}, at::kFloat);
    memory nhwc({{n, oc, h, w}, kF32, Tag::nhwc}, eng, out.data_ptr());
    dnnl::reorder(cur, nhwc).execute(s, cur, nhwc);
    s.wait();
  }
};

WinogradHead::WinogradHead(std::vector<torch::nn::Conv2d> cls_tower, torch::nn::Conv2d cls_logits,
                           std::vector<torch::nn::Conv2d> box_tower, torch::nn::Conv2d bbox_reg)
    : impl_(std::make_shared<Impl>()) {
  auto add = [](std::vector<Impl::Layer>* layers, torch::nn::Conv2d c, bool relu) {
    const auto& o = c->options;
    check((*o.kernel_size())[0] == 3 && (*o.kernel_size())[1] == 3 && (*o.stride())[0] == 1 &&
              (*o.stride())[1] == 1 && o.groups() == 1 && o.bias(),
          "WinogradHead: the head's convs must be 3x3, stride 1, with bias");
    Impl::Layer l;
    l.conv = std::move(c);
    l.relu = relu;
    layers->push_back(std::move(l));
  };
  for (auto& c : cls_tower) add(&impl_->cls, c, true);
  add(&impl_->cls, std::move(cls_logits), false);
  for (auto& c : box_tower) add(&impl_->box, c, true);
  add(&impl_->box, std::move(bbox_reg), false);
}

bool WinogradHead::available() {
  static const bool ok = [] {
    try {
      dnnl::engine eng(dnnl::engine::kind::cpu, 0);
      (void)make_conv(eng, 1, 256, 256, 32, 32, true, true);
      return true;
    } catch (const dnnl::error&) {
      return false;
    }
  }();
  return ok;
}

std::pair<at::Tensor, at::Tensor> WinogradHead::forward(const at::Tensor& x,
                                                        int64_t num_classes) {
  check(impl_ != nullptr, "WinogradHead: not constructed");
  check(x.dim() == 4 && x.scalar_type() == at::kFloat && x.device().is_cpu() && !x.is_mkldnn(),
        "WinogradHead: the input must be a dense float CPU [B, C, H, W] tensor");
  const at::Tensor in = x.contiguous();
  const int64_t n = in.size(0), c = in.size(1), h = in.size(2), w = in.size(3);
  std::lock_guard<std::mutex> lock(impl_->mu);
  dnnl::stream s(impl_->eng);
  memory src({{n, c, h, w}, kF32, Tag::nchw}, impl_->eng, in.data_ptr());
  // Both towers start from the same map: reorder it once to the first conv's layout.
  const auto& first = impl_->prim(impl_->cls.front(), n, h, w, s);
  memory blocked(first.pd.src_desc(), impl_->eng);
  dnnl::reorder(src, blocked).execute(s, src, blocked);
  at::Tensor cls, box;
  impl_->tower(impl_->cls, blocked, n, h, w, cls, s);
  impl_->tower(impl_->box, blocked, n, h, w, box, s);
  return {cls.view({n, -1, num_classes}), box.view({n, -1, 4})};
}

#endif

}  // namespace focaldet::model
