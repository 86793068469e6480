#include "model/gemm_winograd.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <vector>

#include "common/error.h"

// The four tile kernels below are written for L tiles at once (the innermost index of every
// local array), so the compiler vectorises across tiles; on x86-64 GCC also builds an AVX2+FMA
// clone of each, picked at load time.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define FOCALDET_CLONES __attribute__((target_clones("arch=haswell", "default")))
#else
#define FOCALDET_CLONES
#endif

namespace focaldet::model::gemm_winograd {
namespace {

constexpr int L = 8;  // tiles per kernel step

// F(4x4, 3x3) with points 0, 1, -1, 2, -2, inf (Lavin & Gray, 2016): y = A^T [(G g G^T) .*
// (B^T d B)] A for a 6x6 input tile d and 3x3 filter g. Each 1-D transform below reads six (or
// four) lane blocks of L floats, element k at s + k * ss, and writes to d + k * ds.

// v = B^T d
inline void input_1d(const float* s, int ss, float* d, int ds) {
  for (int l = 0; l < L; ++l) {
    const float d0 = s[l], d1 = s[ss + l], d2 = s[2 * ss + l], d3 = s[3 * ss + l],
                d4 = s[4 * ss + l], d5 = s[5 * ss + l];
    d[l] = 4 * d0 - 5 * d2 + d4;
    d[ds + l] = -4 * (d1 + d2) + d3 + d4;
    d[2 * ds + l] = 4 * (d1 - d2) - d3 + d4;
    d[3 * ds + l] = 2 * (d3 - d1) - d2 + d4;
    d[4 * ds + l] = 2 * (d1 - d3) - d2 + d4;
    d[5 * ds + l] = 4 * d1 - 5 * d3 + d5;
  }
}

// d = B v (the transpose of input_1d)
inline void input_1d_t(const float* s, int ss, float* d, int ds) {
  for (int l = 0; l < L; ++l) {
    const float v0 = s[l], v1 = s[ss + l], v2 = s[2 * ss + l], v3 = s[3 * ss + l],
                v4 = s[4 * ss + l], v5 = s[5 * ss + l];
    d[l] = 4 * v0;
    d[ds + l] = 4 * (v2 - v1 + v5) + 2 * (v4 - v3);
    d[2 * ds + l] = -5 * v0 - 4 * (v1 + v2) - v3 - v4;
    d[3 * ds + l] = v1 - v2 + 2 * (v3 - v4) - 5 * v5;
    d[4 * ds + l] = v0 + v1 + v2 + v3 + v4;
    d[5 * ds + l] = v5;
  }
}

// y = A^T m (six in, four out)
inline void output_1d(const float* s, int ss, float* d, int ds) {
  for (int l = 0; l < L; ++l) {
    const float m0 = s[l], m1 = s[ss + l], m2 = s[2 * ss + l], m3 = s[3 * ss + l],
                m4 = s[4 * ss + l], m5 = s[5 * ss + l];
    const float p12 = m1 + m2, n12 = m1 - m2, p34 = m3 + m4, n34 = m3 - m4;
    d[l] = m0 + p12 + p34;
    d[ds + l] = n12 + 2 * n34;
    d[2 * ds + l] = p12 + 4 * p34;
    d[3 * ds + l] = n12 + 8 * n34 + m5;
  }
}

// m = A y (the transpose of output_1d: four in, six out)
inline void output_1d_t(const float* s, int ss, float* d, int ds) {
  for (int l = 0; l < L; ++l) {
    const float y0 = s[l], y1 = s[ss + l], y2 = s[2 * ss + l], y3 = s[3 * ss + l];
    d[l] = y0;
    d[ds + l] = y0 + y1 + y2 + y3;
    d[2 * ds + l] = y0 - y1 + y2 - y3;
    d[3 * ds + l] = y0 + 2 * y1 + 4 * y2 + 8 * y3;
    d[4 * ds + l] = y0 - 2 * y1 + 4 * y2 - 8 * y3;
    d[5 * ds + l] = y3;
  }
}

// The geometry of one call: tiles of 4x4 outputs, t = (n * th_count + th) * tw_count + tw.
struct Tiles {
  int64_t n, c, o, h, w, th, tw;
  int64_t count() const { return n * th * tw; }
  int64_t pad_w() const { return 4 * tw + 2; }  // a zero-padded input row, 1 left, >= 1 right
};

Tiles tiles_of(int64_t n, int64_t c, int64_t o, int64_t h, int64_t w) {
  return {n, c, o, h, w, (h + 3) / 4, (w + 3) / 4};
}

// v [36, C, T] = B^T d B of every 6x6 input tile of x [N, C, H, W] (padding 1).
FOCALDET_CLONES
void input_transform_range(const float* x, const Tiles& g, float* v, int64_t begin, int64_t end) {
  const int64_t T = g.count(), wp = g.pad_w();
  std::vector<float> rows(6 * (wp + 4 * L));  // 6 padded rows (+ slack for the last block)
  alignas(64) float d[36 * L], t[36 * L], r[36 * L];
  for (int64_t nc = begin; nc < end; ++nc) {
    const int64_t n = nc / g.c, c = nc % g.c;
    const float* plane = x + nc * g.h * g.w;
    float* out = v + c * T;
    for (int64_t th = 0; th < g.th; ++th) {
      std::fill(rows.begin(), rows.end(), 0.f);
      const int64_t rw = wp + 4 * L;
      for (int i = 0; i < 6; ++i) {
        const int64_t y = 4 * th - 1 + i;
        if (y >= 0 && y < g.h) std::copy_n(plane + y * g.w, g.w, rows.data() + i * rw + 1);
      }
      const int64_t t0 = (n * g.th + th) * g.tw;
      for (int64_t tw0 = 0; tw0 < g.tw; tw0 += L) {
        for (int i = 0; i < 6; ++i) {
          const float* row = rows.data() + i * rw + 4 * tw0;
          for (int j = 0; j < 6; ++j) {
            for (int l = 0; l < L; ++l) d[(i * 6 + j) * L + l] = row[4 * l + j];
          }
        }
        for (int i = 0; i < 6; ++i) input_1d(d + i * 6 * L, L, t + i * 6 * L, L);
        for (int b = 0; b < 6; ++b) input_1d(t + b * L, 6 * L, r + b * L, 6 * L);
        const int64_t cnt = std::min<int64_t>(L, g.tw - tw0);
        for (int k = 0; k < 36; ++k) {
          std::copy_n(r + k * L, cnt, out + k * g.c * T + t0 + tw0);
        }
      }
    }
  }
}

void input_transform(const float* x, const Tiles& g, float* v) {
  at::parallel_for(0, g.n * g.c, 1,
                   [&](int64_t begin, int64_t end) { input_transform_range(x, g, v, begin, end); });
}

// dx [N, C, H, W] = the transpose of input_transform applied to dv [36, C, T] (overlapping
// tiles add up).
FOCALDET_CLONES
void input_transform_t_range(const float* dv, const Tiles& g, float* dx, int64_t begin,
                             int64_t end) {
  const int64_t T = g.count(), wp = g.pad_w(), hp = 4 * g.th + 2;
  const int64_t rw = wp + 4 * L;
  std::vector<float> plane_pad(hp * rw);
  alignas(64) float v[36 * L], t[36 * L], r[36 * L];
  for (int64_t nc = begin; nc < end; ++nc) {
    const int64_t n = nc / g.c, c = nc % g.c;
    std::fill(plane_pad.begin(), plane_pad.end(), 0.f);
    const float* in = dv + c * T;
    for (int64_t th = 0; th < g.th; ++th) {
      const int64_t t0 = (n * g.th + th) * g.tw;
      for (int64_t tw0 = 0; tw0 < g.tw; tw0 += L) {
        const int64_t cnt = std::min<int64_t>(L, g.tw - tw0);
        for (int k = 0; k < 36; ++k) {
          const float* src = in + k * g.c * T + t0 + tw0;
          for (int l = 0; l < L; ++l) v[k * L + l] = l < cnt ? src[l] : 0.f;
        }
        for (int a = 0; a < 6; ++a) input_1d_t(v + a * 6 * L, L, t + a * 6 * L, L);
        for (int j = 0; j < 6; ++j) input_1d_t(t + j * L, 6 * L, r + j * L, 6 * L);
        for (int i = 0; i < 6; ++i) {
          float* row = plane_pad.data() + (4 * th + i) * rw + 4 * tw0;
          for (int l = 0; l < cnt; ++l) {
            for (int j = 0; j < 6; ++j) row[4 * l + j] += r[(i * 6 + j) * L + l];
          }
        }
      }
    }
    float* out = dx + nc * g.h * g.w;
    for (int64_t y = 0; y < g.h; ++y) {
      std::copy_n(plane_pad.data() + (y + 1) * rw + 1, g.w, out + y * g.w);
    }
  }
}

void input_transform_t(const float* dv, const Tiles& g, float* dx) {
  at::parallel_for(0, g.n * g.c, 1, [&](int64_t begin, int64_t end) {
    input_transform_t_range(dv, g, dx, begin, end);
  });
}

// y [N, O, H, W] = A^T m A of every tile of m [36, O, T], plus bias (or nullptr).
FOCALDET_CLONES
void output_transform_range(const float* m, const float* bias, const Tiles& g, float* y,
                            int64_t begin, int64_t end, bool relu) {
  const int64_t T = g.count();
  const int64_t rw = 4 * g.tw + 4 * L;
  std::vector<float> rows(4 * rw);
  alignas(64) float s[36 * L], t[24 * L], r[16 * L];
  for (int64_t no = begin; no < end; ++no) {
    const int64_t n = no / g.o, o = no % g.o;
    const float b = bias ? bias[o] : 0.f;
    const float* in = m + o * T;
    float* plane = y + no * g.h * g.w;
    for (int64_t th = 0; th < g.th; ++th) {
      const int64_t t0 = (n * g.th + th) * g.tw;
      for (int64_t tw0 = 0; tw0 < g.tw; tw0 += L) {
        const int64_t cnt = std::min<int64_t>(L, g.tw - tw0);
        for (int k = 0; k < 36; ++k) {
          const float* src = in + k * g.o * T + t0 + tw0;
          for (int l = 0; l < L; ++l) s[k * L + l] = l < cnt ? src[l] : 0.f;
        }
        for (int a = 0; a < 6; ++a) output_1d(s + a * 6 * L, L, t + a * 4 * L, L);
        for (int j = 0; j < 4; ++j) output_1d(t + j * L, 4 * L, r + j * L, 4 * L);
        for (int i = 0; i < 4; ++i) {
          float* row = rows.data() + i * rw + 4 * tw0;
          for (int l = 0; l < L; ++l) {
            for (int j = 0; j < 4; ++j) row[4 * l + j] = r[(i * 4 + j) * L + l] + b;
          }
        }
      }
      for (int i = 0; i < 4 && 4 * th + i < g.h; ++i) {
        float* out = plane + (4 * th + i) * g.w;
        std::copy_n(rows.data() + i * rw, g.w, out);
        if (relu) {
          for (int64_t x = 0; x < g.w; ++x) out[x] = out[x] < 0.f ? 0.f : out[x];  // NaN stays
        }
      }
    }
  }
}

void output_transform(const float* m, const float* bias, const Tiles& g, float* y,
                      bool relu = false) {
  at::parallel_for(0, g.n * g.o, 1, [&](int64_t begin, int64_t end) {
    output_transform_range(m, bias, g, y, begin, end, relu);
  });
}

// dm [36, O, T] = the transpose of output_transform applied to dy [N, O, H, W].
FOCALDET_CLONES
void output_transform_t_range(const float* dy, const Tiles& g, float* dm, int64_t begin,
                              int64_t end) {
  const int64_t T = g.count();
  const int64_t rw = 4 * g.tw + 4 * L;
  std::vector<float> rows(4 * rw);
  alignas(64) float s[16 * L], t[24 * L], r[36 * L];
  for (int64_t no = begin; no < end; ++no) {
    const int64_t n = no / g.o, o = no % g.o;
    const float* plane = dy + no * g.h * g.w;
    float* out = dm + o * T;
    for (int64_t th = 0; th < g.th; ++th) {
      std::fill(rows.begin(), rows.end(), 0.f);
      for (int i = 0; i < 4 && 4 * th + i < g.h; ++i) {
        std::copy_n(plane + (4 * th + i) * g.w, g.w, rows.data() + i * rw);
      }
      const int64_t t0 = (n * g.th + th) * g.tw;
      for (int64_t tw0 = 0; tw0 < g.tw; tw0 += L) {
        for (int i = 0; i < 4; ++i) {
          const float* row = rows.data() + i * rw + 4 * tw0;
          for (int j = 0; j < 4; ++j) {
            for (int l = 0; l < L; ++l) s[(i * 4 + j) * L + l] = row[4 * l + j];
          }
        }
        for (int i = 0; i < 4; ++i) output_1d_t(s + i * 4 * L, L, t + i * 6 * L, L);
        for (int b = 0; b < 6; ++b) output_1d_t(t + b * L, 6 * L, r + b * L, 6 * L);
        const int64_t cnt = std::min<int64_t>(L, g.tw - tw0);
        for (int k = 0; k < 36; ++k) std::copy_n(r + k * L, cnt, out + k * g.o * T + t0 + tw0);
      }
    }
  }
}

void output_transform_t(const float* dy, const Tiles& g, float* dm) {
  at::parallel_for(0, g.n * g.o, 1, [&](int64_t begin, int64_t end) {
    output_transform_t_range(dy, g, dm, begin, end);
  });
}

// kron(G, G): [36, 9], the weight transform G g G^T of a flattened 3x3 filter.
const at::Tensor& weight_matrix() {
  static const at::Tensor k = [] {
    const double G[6][3] = {{1.0 / 4, 0, 0},
                            {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                            {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                            {1.0 / 24, 1.0 / 12, 1.0 / 6},
                            {1.0 / 24, -1.0 / 12, 1.0 / 6},
                            {0, 0, 1}};
    at::Tensor m = at::empty({36, 9}, at::kDouble);
    auto a = m.accessor<double, 2>();
    for (int p = 0; p < 6; ++p)
      for (int q = 0; q < 6; ++q)
        for (int i = 0; i < 3; ++i)
          for (int j = 0; j < 3; ++j) a[p * 6 + q][i * 3 + j] = G[p][i] * G[q][j];
    return m.to(at::kFloat);
  }();
  return k;
}

// OpenBLAS's pthread build (Debian's libblas.so.3 for LibTorch) runs the products on its own
// thread pool; between calls its threads spin while LibTorch's OpenMP threads run the
// transforms, and the other way round, so two threads ran no faster than one (measured: a
// second thread took the GEMM path's 1x256x60x80 forward from 30 to 38 ms where the direct
// conv halved). So the 36 products are spread over the OpenMP threads instead, each a
// single-threaded BLAS call: OpenBLAS is set to one thread for the whole process when this
// library loads (found by name, so any other BLAS is left as it is). At load, not at first
// use: OpenBLAS on one thread and on two round differently, and a switch in the middle of a
// run would make a resumed run differ from an uninterrupted one.
bool set_blas_to_one_thread() {
  using SetThreads = void (*)(int);
  if (auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    set(1);
    return true;
  }
  return false;
}
[[maybe_unused]] const bool kBlasOnOneThread = set_blas_to_one_thread();

// out[k] = a[k] b[k] for the 36 Winograd points, over LibTorch's threads.
at::Tensor products(const at::Tensor& a, const at::Tensor& b) {
  at::Tensor out = at::empty({a.size(0), a.size(1), b.size(2)}, a.options());
  at::parallel_for(0, a.size(0), 1, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      at::Tensor o = out.select(0, k);
      at::mm_out(o, a.select(0, k), b.select(0, k));
    }
  });
  return out;
}

at::Tensor input_tiles(const at::Tensor& x, const Tiles& g) {
  at::Tensor v = at::empty({36, g.c, g.count()}, x.options());
  input_transform(x.data_ptr<float>(), g, v.data_ptr<float>());
  return v;
}

// The autograd function (with and without a bias: autograd takes no undefined inputs).
struct Core {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x_in,
                            const at::Tensor& weight, const at::Tensor& bias) {
    const at::Tensor x = x_in.contiguous();
    const at::Tensor y = gemm_winograd::forward(x, transform_weight(weight), bias);
    ctx->save_for_backward({x, weight});
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads,
                                                 bool has_bias) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& weight = saved[1];
    const at::Tensor dy = grads[0].contiguous();
    const Tiles g = tiles_of(x.size(0), x.size(1), weight.size(0), x.size(2), x.size(3));
    at::Tensor dm = at::empty({36, g.o, g.count()}, dy.options());
    output_transform_t(dy.data_ptr<float>(), g, dm.data_ptr<float>());
    at::Tensor dx, dw, db;
    if (ctx->needs_input_grad(0)) {
      const at::Tensor dv = products(transform_weight(weight).transpose(1, 2), dm);  // [36, C, T]
      dx = at::empty_like(x);
      input_transform_t(dv.data_ptr<float>(), g, dx.data_ptr<float>());
    }
    if (ctx->needs_input_grad(1)) {
      const at::Tensor du = products(dm, input_tiles(x, g).transpose(1, 2));  // [36, O, C]
      dw = at::mm(du.view({36, g.o * g.c}).t(), weight_matrix()).view(weight.sizes());
    }
    torch::autograd::variable_list out = {dx, dw};
    if (has_bias) out.push_back(ctx->needs_input_grad(2) ? dy.sum({0, 2, 3}) : at::Tensor());
    return out;
  }
};

class Conv : public torch::autograd::Function<Conv> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            const at::Tensor& weight, const at::Tensor& bias) {
    return Core::forward(ctx, x, weight, bias);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    return Core::backward(ctx, std::move(grads), true);
  }
};

class ConvNoBias : public torch::autograd::Function<ConvNoBias> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            const at::Tensor& weight) {
    return Core::forward(ctx, x, weight, at::Tensor());
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    return Core::backward(ctx, std::move(grads), false);
  }
};

void check_args(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                const char* who) {
  check(x.dim() == 4 && weight.dim() == 4 && weight.size(2) == 3 && weight.size(3) == 3 &&
            weight.size(1) == x.size(1) &&
            (!bias.defined() || (bias.dim() == 1 && bias.size(0) == weight.size(0))),
        std::string(who) + ": x [N, C, H, W], weight [O, C, 3, 3] and bias [O] (or none) required");
  for (const at::Tensor* t : {&x, &weight, &bias}) {
    check(!t->defined() || (t->scalar_type() == at::kFloat && t->device().is_cpu() &&
                            t->layout() == at::kStrided),
          std::string(who) + ": dense float CPU tensors only");
  }
}

}  // namespace

bool pays(int64_t n, int64_t c, int64_t o, int64_t h, int64_t w, bool backward) {
  const int64_t tiles = n * ((h + 3) / 4) * ((w + 3) / 4);
  if (backward) return c >= 64 && o >= 64 && tiles >= std::max<int64_t>(64, (c + o) / 4);
  return c >= 64 && o >= 64 && tiles >= 16;
}

at::Tensor transform_weight(const at::Tensor& weight) {
  const int64_t o = weight.size(0), c = weight.size(1);
  return at::mm(weight_matrix(), weight.reshape({o * c, 9}).t()).view({36, o, c});
}

at::Tensor forward(const at::Tensor& x_in, const at::Tensor& u, const at::Tensor& bias_in,
                   bool relu) {
  const at::Tensor x = x_in.contiguous();
  const Tiles g = tiles_of(x.size(0), x.size(1), u.size(1), x.size(2), x.size(3));
  check(u.dim() == 3 && u.size(0) == 36 && u.size(2) == g.c,
        "gemm_winograd::forward: transformed weight [36, O, C] required");
  const at::Tensor m = products(u, input_tiles(x, g));  // [36, O, T]
  const at::Tensor bias = bias_in.defined() ? bias_in.contiguous() : at::Tensor();
  at::Tensor y = at::empty({g.n, g.o, g.h, g.w}, x.options());
  output_transform(m.data_ptr<float>(), bias.defined() ? bias.data_ptr<float>() : nullptr, g,
                   y.data_ptr<float>(), relu);
  return y;
}

at::Tensor conv2d(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  check_args(x, weight, bias, "gemm_winograd::conv2d");
  return bias.defined() ? Conv::apply(x, weight, bias) : ConvNoBias::apply(x, weight);
}

}  // namespace focaldet::model::gemm_winograd
