// The model's parts on their own: output layout, initialisation, backbone variants and the
// weight loader's errors.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/function.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <cmath>
#include <map>
#include <string>

#include "common/error.h"
#include "model/gemm_winograd.h"
#include "model/norm.h"
#include "model/retinanet.h"
#include "model/retinanet_head.h"
#include "model/weight_import.h"
#include "model/winograd_conv.h"
#include "model/winograd_head.h"
#include "support/oracle.h"

namespace focaldet::model {
namespace {

namespace t = focaldet::test;

RetinaNetOptions small_options() {
  RetinaNetOptions o;
  o.backbone.depth = 18;
  o.head.num_convs = 2;
  o.head.channels = 64;
  o.head.num_classes = 3;
  o.fpn_channels = 64;
  return o;
}

TEST(RetinaNet, OutputLayoutIsAnchorsByClasses) {
  torch::NoGradGuard no_grad;
  RetinaNet net(small_options());
  const RetinaNetOutput out = net->forward(torch::randn({2, 3, 64, 96}));
  // Levels 8x12, 4x6, 2x3, 1x2, 1x1 (strides 8..128), 9 anchors per location.
  const int64_t a = (8 * 12 + 4 * 6 + 2 * 3 + 1 * 2 + 1 * 1) * 9;
  EXPECT_EQ(out.cls_logits.sizes(), (at::IntArrayRef{2, a, 3}));
  EXPECT_EQ(out.box_deltas.sizes(), (at::IntArrayRef{2, a, 4}));
  ASSERT_EQ(out.feature_sizes.size(), 5u);
  EXPECT_EQ(out.feature_sizes[0], (std::pair<int64_t, int64_t>{8, 12}));
  EXPECT_EQ(out.feature_sizes[4], (std::pair<int64_t, int64_t>{1, 1}));
}

// Copies every parameter and buffer of `from` into `to` (same layout).
void copy_state(RetinaNet& from, RetinaNet& to) {
  torch::NoGradGuard no_grad;
  auto dst = to->named_parameters();
  for (const auto& p : from->named_parameters()) dst[p.key()].copy_(p.value());
  auto dst_buffers = to->named_buffers();
  for (const auto& b : from->named_buffers()) dst_buffers[b.key()].copy_(b.value());
}

TEST(RetinaNet, BlockedInferenceMatchesDenseAndFollowsWeightChanges) {
  RetinaNetOptions o = small_options();
  o.backbone.depth = 50;  // bottlenecks with downsample shortcuts
  RetinaNet blocked(o);
  o.blocked_inference = false;
  RetinaNet dense(o);
  {
    // Frozen BN statistics away from the identity, so folding them is exercised.
    torch::NoGradGuard no_grad;
    for (auto& b : blocked->named_buffers()) {
      const bool var = b.key().find("running_var") != std::string::npos;
      b.value().uniform_(var ? 0.5 : -0.2, var ? 2.0 : 0.2);
    }
  }
  copy_state(blocked, dense);
  const at::Tensor x = torch::randn({1, 3, 96, 128});
  torch::NoGradGuard no_grad;
  ASSERT_TRUE(blocked->runs_blocked(x));
  ASSERT_FALSE(dense->runs_blocked(x));
  auto expect_close = [&](const char* when) {
    const RetinaNetOutput a = blocked->forward(x), b = dense->forward(x);
    ASSERT_EQ(a.cls_logits.sizes(), b.cls_logits.sizes()) << when;
    EXPECT_FALSE(a.cls_logits.is_mkldnn()) << when;
    for (const auto& [got, want] :
         {std::pair{a.cls_logits, b.cls_logits}, std::pair{a.box_deltas, b.box_deltas}}) {
      const double err = ((got - want).abs().max() / want.abs().max()).item<double>();
      EXPECT_LT(err, 1e-5) << when;
    }
    EXPECT_EQ(a.feature_sizes, b.feature_sizes) << when;
    const auto fa = blocked->features(x), fb = dense->features(x);
    for (size_t l = 0; l < fa.size(); ++l) {
      EXPECT_FALSE(fa[l].is_mkldnn()) << when;
      EXPECT_TRUE(at::allclose(fa[l], fb[l], 1e-4, 1e-4)) << when << ", P" << l + 3;
    }
  };
  expect_close("first call");
  // Changes in place (as an optimizer step or load_weights makes) reach the cached weights.
  for (auto* net : {&blocked, &dense}) {
    auto p = (*net)->named_parameters();
    p["head.classification_head.conv.0.0.weight"].mul_(1.5);
    p["backbone.fpn.layer_blocks.0.0.bias"].add_(0.25);
    (*net)->named_buffers()["backbone.body.layer2.0.bn1.running_mean"].add_(0.5);
  }
  expect_close("after in-place changes");
}

TEST(RetinaNet, BlockedInferenceOnlyWithoutGradAndWithFrozenNorms) {
  RetinaNetOptions o = small_options();
  const at::Tensor x = torch::randn({1, 3, 64, 64});
  RetinaNet frozen(o);
  EXPECT_FALSE(frozen->runs_blocked(x));  // grad mode is on
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(frozen->runs_blocked(x));
  EXPECT_FALSE(frozen->runs_blocked(x.to(at::kDouble)));
  o.head.group_norm = true;
  EXPECT_FALSE(RetinaNet(o)->runs_blocked(x));
  o = small_options();
  o.backbone.norm = NormKind::kBatchNorm;
  EXPECT_FALSE(RetinaNet(o)->runs_blocked(x));
}

TEST(ConvNorm, FoldedFrozenBatchNormHasTheGradientsOfConvThenNorm) {
  // In double precision, so the fold's reordering of products shows as ~1e-15, not 1e-6.
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(4, 6, 3).stride(2).padding(1).bias(false));
  FrozenBatchNorm2d bn(6);
  conv->to(torch::kDouble);
  bn->to(torch::kDouble);
  {
    torch::NoGradGuard no_grad;
    for (auto& b : bn->named_buffers()) {
      const bool var = b.key() == "running_var";
      b.value().uniform_(var ? 0.5 : -0.5, var ? 2.0 : 0.5);
    }
  }
  ConvNorm folded(conv, torch::nn::AnyModule(bn));
  const at::Tensor x = torch::randn({2, 4, 9, 11}, torch::kDouble).requires_grad_();
  const at::Tensor upstream = torch::randn({2, 6, 5, 6}, torch::kDouble);

  const at::Tensor want = bn->forward(conv->forward(x));
  const auto want_grads = torch::autograd::grad({want}, {x, conv->weight}, {upstream});
  const at::Tensor got = folded.forward(x);
  const auto got_grads = torch::autograd::grad({got}, {x, conv->weight}, {upstream});
  EXPECT_TRUE(at::allclose(got, want, 1e-12, 1e-12));
  EXPECT_TRUE(at::allclose(got_grads[0], want_grads[0], 1e-12, 1e-12)) << "d/dx";
  EXPECT_TRUE(at::allclose(got_grads[1], want_grads[1], 1e-12, 1e-12)) << "d/dw";

  // A frozen conv (no grad) in grad mode uses the cached fold and still passes d/dx.
  conv->weight.set_requires_grad(false);
  const at::Tensor frozen = folded.forward(x);
  EXPECT_TRUE(at::allclose(frozen, want, 1e-12, 1e-12));
  const auto frozen_dx = torch::autograd::grad({frozen}, {x}, {upstream});
  EXPECT_TRUE(at::allclose(frozen_dx[0], want_grads[0], 1e-12, 1e-12));
}

// Random parameters for `from` (away from the init's zero biases), copied into `to` (the same
// architecture); call without grad mode.
void randomise_into(torch::nn::Module& from, torch::nn::Module& to) {
  auto dst = to.named_parameters();
  for (const auto& p : from.named_parameters()) {
    p.value().normal_(0, 0.1);
    dst[p.key()].copy_(p.value());
  }
}

TEST(RetinaNetHead, WinogradInferenceMatchesTheDirectConvolution) {
  if (!WinogradHead::available()) {
    GTEST_SKIP() << "no oneDNN Winograd here (needs libdnnl-dev at build time and AVX-512)";
  }
  HeadOptions o;
  o.num_convs = 3;
  o.channels = 48;
  o.in_channels = 32;
  o.num_classes = 5;
  RetinaNetHead winograd(o);
  o.winograd = false;
  RetinaNetHead direct(o);
  ASSERT_TRUE(winograd->uses_winograd());
  ASSERT_FALSE(direct->uses_winograd());
  torch::NoGradGuard no_grad;
  randomise_into(*winograd, *direct);
  std::vector<at::Tensor> blocked, dense;
  for (const auto& [h, w] : std::vector<std::pair<int64_t, int64_t>>{{24, 40}, {12, 20}, {3, 5}}) {
    dense.push_back(torch::randn({2, 32, h, w}));
    blocked.push_back(dense.back().to_mkldnn());
  }
  auto expect_close = [&](const char* when) {
    const HeadOutput a = winograd->forward(blocked), b = direct->forward(dense);
    ASSERT_EQ(a.cls_logits.sizes(), b.cls_logits.sizes()) << when;
    ASSERT_EQ(a.box_deltas.sizes(), b.box_deltas.sizes()) << when;
    for (const auto& [got, want] :
         {std::pair{a.cls_logits, b.cls_logits}, std::pair{a.box_deltas, b.box_deltas}}) {
      const double err = ((got - want).abs().max() / want.abs().max()).item<double>();
      EXPECT_LT(err, 1e-5) << when;
      EXPECT_GT(want.abs().max().item<double>(), 0.1) << when;
    }
  };
  expect_close("first call");
  for (auto* head : {&winograd, &direct}) {
    auto p = (*head)->named_parameters();
    p["classification_head.conv.1.0.weight"].mul_(-2);
    p["regression_head.bbox_reg.bias"].add_(1);
  }
  expect_close("after in-place changes");
}

// Inference of the head on Winograd on any CPU (oneDNN's or the GEMM path), blocked and dense
// maps, with and without GroupNorm: each conv keeps its transformed weight across calls, and
// changes in place (an optimizer step, load_weights, the model EMA) reach it.
TEST(RetinaNetHead, CachedWinogradInferenceMatchesTheDirectConvolutionAndFollowsTheWeights) {
  for (const bool group_norm : {false, true}) {
    HeadOptions o;
    o.num_convs = 2;
    o.channels = 64;  // the GEMM path takes 64 channels and 16 tiles up (gemm_winograd::pays)
    o.in_channels = 64;
    o.num_classes = 5;
    o.group_norm = group_norm;
    o.gn_groups = 16;
    RetinaNetHead winograd(o);
    o.winograd = false;
    RetinaNetHead direct(o);
    ASSERT_TRUE(winograd->trains_winograd());
    torch::NoGradGuard no_grad;
    randomise_into(*winograd, *direct);
    std::vector<at::Tensor> dense, blocked;
    for (const auto& [h, w] : std::vector<std::pair<int64_t, int64_t>>{{24, 40}, {16, 20}, {3, 5}}) {
      dense.push_back(torch::randn({2, 64, h, w}));
      blocked.push_back(dense.back().to_mkldnn());
    }
    auto expect_close = [&](const std::string& when) {
      const HeadOutput b = direct->forward(dense);
      for (const bool mkldnn : {false, true}) {
        if (mkldnn && group_norm) continue;  // blocked maps: a head without GroupNorm only
        const HeadOutput a = winograd->forward(mkldnn ? blocked : dense);
        for (const auto& [got, want] :
             {std::pair{a.cls_logits, b.cls_logits}, std::pair{a.box_deltas, b.box_deltas}}) {
          ASSERT_EQ(got.sizes(), want.sizes()) << when;
          const double err = ((got - want).abs().max() / want.abs().max()).item<double>();
          EXPECT_LT(err, 1e-4) << when << (mkldnn ? ", blocked" : ", dense")
                               << (group_norm ? ", GroupNorm" : "");
        }
      }
    };
    expect_close("first call");
    expect_close("second call (cached weights)");
    for (auto* head : {&winograd, &direct}) {
      auto p = (*head)->named_parameters();
      p["classification_head.conv.1.0.weight"].mul_(-2);
      p["regression_head.bbox_reg.bias"].add_(1);
      p["classification_head.cls_logits.weight"].set_data(
          p["classification_head.cls_logits.weight"].detach().clone() * 0.5);  // replaced
    }
    expect_close("after changes in place and a replaced weight");
  }
}

TEST(WinogradConv, MatchesConv2dAndItsGradients) {
  if (!winograd_training_available()) {
    GTEST_SKIP() << "no oneDNN Winograd here (needs libdnnl-dev at build time and AVX-512)";
  }
  const at::Tensor x = torch::randn({2, 32, 13, 22}).requires_grad_();
  const at::Tensor w = (torch::randn({48, 32, 3, 3}) * 0.1).requires_grad_();
  const at::Tensor b = torch::randn({48}).requires_grad_();
  const at::Tensor upstream = torch::randn({2, 48, 13, 22});
  const at::Tensor got = winograd_conv2d(x, w, b);
  const auto got_grads = torch::autograd::grad({got}, {x, w, b}, {upstream});
  // The reference in double precision: the Winograd result is float with its own rounding.
  const at::Tensor xd = x.detach().to(at::kDouble).requires_grad_();
  const at::Tensor wd = w.detach().to(at::kDouble).requires_grad_();
  const at::Tensor bd = b.detach().to(at::kDouble).requires_grad_();
  const at::Tensor want = at::conv2d(xd, wd, bd, 1, 1);
  const auto want_grads = torch::autograd::grad({want}, {xd, wd, bd}, {upstream.to(at::kDouble)});
  auto rel = [](const at::Tensor& a, const at::Tensor& ref) {
    return ((a.to(at::kDouble) - ref).abs().max() / ref.abs().max()).item<double>();
  };
  EXPECT_LT(rel(got, want), 1e-5);
  EXPECT_LT(rel(got_grads[0], want_grads[0]), 1e-5) << "d/dx";
  EXPECT_LT(rel(got_grads[1], want_grads[1]), 1e-5) << "d/dw";
  EXPECT_LT(rel(got_grads[2], want_grads[2]), 1e-5) << "d/db";
  // Only the gradients asked for: a frozen weight and bias get none.
  const at::Tensor x_only = winograd_conv2d(x, w.detach(), b.detach());
  const auto dx = torch::autograd::grad({x_only}, {x}, {upstream});
  EXPECT_LT(rel(dx[0], want_grads[0]), 1e-5);
}

class WinogradHeadTraining : public ::testing::TestWithParam<bool> {};

TEST_P(WinogradHeadTraining, MatchesTheDirectHead) {
  HeadOptions o;
  o.num_convs = 2;
  o.channels = 32;
  o.in_channels = 16;
  o.num_classes = 3;
  o.group_norm = GetParam();
  o.gn_groups = 8;
  RetinaNetHead winograd(o);
  if (!winograd->trains_winograd()) GTEST_SKIP() << "no oneDNN Winograd here";
  o.winograd = false;
  RetinaNetHead direct(o);
  ASSERT_FALSE(direct->trains_winograd());
  {
    torch::NoGradGuard no_grad;
    auto dst = direct->named_parameters();
    for (const auto& p : winograd->named_parameters()) {
      p.value().normal_(0, 0.1);
      dst[p.key()].copy_(p.value());
    }
  }
  const std::vector<at::Tensor> f = {torch::randn({2, 16, 12, 20}), torch::randn({2, 16, 6, 10})};
  const HeadOutput a = winograd->forward(f), b = direct->forward(f);
  const at::Tensor la = (a.cls_logits.sigmoid().sum() + a.box_deltas.square().sum());
  const at::Tensor lb = (b.cls_logits.sigmoid().sum() + b.box_deltas.square().sum());
  EXPECT_NEAR(la.item<double>(), lb.item<double>(), 1e-5 * std::abs(lb.item<double>()));
  la.backward();
  lb.backward();
  auto db = direct->named_parameters();
  for (const auto& p : winograd->named_parameters()) {
    const at::Tensor g = p.value().grad(), ref = db[p.key()].grad();
    ASSERT_TRUE(g.defined()) << p.key();
    EXPECT_LT(((g - ref).abs().max() / ref.abs().max()).item<double>(), 1e-4) << p.key();
  }
}
INSTANTIATE_TEST_SUITE_P(GroupNorm, WinogradHeadTraining, ::testing::Bool());

TEST(ConvNorm, WinogradConvBeforeATrainedBatchNormMatchesTheDirectConv) {
  if (!winograd_training_available()) GTEST_SKIP() << "no oneDNN Winograd here";
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(8, 16, 3).stride(1).padding(1).bias(false));
  torch::nn::BatchNorm2d bn(16);
  ConvNorm winograd(conv, torch::nn::AnyModule(bn), /*winograd=*/true);
  const at::Tensor x = torch::randn({2, 8, 9, 12}).requires_grad_();
  const at::Tensor upstream = torch::randn({2, 16, 9, 12});
  const at::Tensor got = winograd.forward(x);
  const auto got_grads = torch::autograd::grad({got}, {x, conv->weight}, {upstream});
  const at::Tensor want = bn->forward(conv->forward(x));
  const auto want_grads = torch::autograd::grad({want}, {x, conv->weight}, {upstream});
  auto rel = [](const at::Tensor& a, const at::Tensor& ref) {
    return ((a - ref).abs().max() / ref.abs().max()).item<double>();
  };
  EXPECT_LT(rel(got, want), 1e-4);
  EXPECT_LT(rel(got_grads[0], want_grads[0]), 1e-4) << "d/dx";
  EXPECT_LT(rel(got_grads[1], want_grads[1]), 1e-4) << "d/dw";
}

TEST(ConvNorm, WinogradFoldedFrozenBatchNormMatchesConvThenNorm) {
  if (!winograd_training_available()) GTEST_SKIP() << "no oneDNN Winograd here";
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(64, 64, 3).stride(1).padding(1).bias(false));
  FrozenBatchNorm2d bn(64);
  {
    torch::NoGradGuard no_grad;
    for (auto& b : bn->named_buffers()) {
      const bool var = b.key() == "running_var";
      b.value().uniform_(var ? 0.5 : -0.5, var ? 2.0 : 0.5);
    }
  }
  ConvNorm winograd(conv, torch::nn::AnyModule(bn), /*winograd=*/true);
  const at::Tensor x = torch::randn({2, 64, 20, 28}).requires_grad_();
  const at::Tensor upstream = torch::randn({2, 64, 20, 28});
  const at::Tensor want = bn->forward(conv->forward(x));
  const auto want_grads = torch::autograd::grad({want}, {x, conv->weight}, {upstream});
  const at::Tensor got = winograd.forward(x);
  const auto got_grads = torch::autograd::grad({got}, {x, conv->weight}, {upstream});
  auto rel = [](const at::Tensor& a, const at::Tensor& ref) {
    return ((a - ref).abs().max() / ref.abs().max()).item<double>();
  };
  // 64 channels on a 20x28 map: a shape on which the GEMM path runs where oneDNN's Winograd
  // does not (F(4x4, 3x3) in float: ~1e-5 of the largest value).
  EXPECT_LT(rel(got, want), 3e-5);
  EXPECT_LT(rel(got_grads[0], want_grads[0]), 3e-5) << "d/dx";
  EXPECT_LT(rel(got_grads[1], want_grads[1]), 3e-5) << "d/dw";
  // The grad function is Winograd's, not conv2d's: the path under test really ran.
  EXPECT_EQ(got.grad_fn()->name().find("Convolution"), std::string::npos) << got.grad_fn()->name();
}

TEST(RetinaNet, HeadStartsAtThePriorProbability) {
  RetinaNet net(small_options());
  const auto params = net->named_parameters();
  // b = -log((1 - 0.01) / 0.01) = -log(99).
  const at::Tensor bias = params["head.classification_head.cls_logits.bias"];
  EXPECT_TRUE(at::allclose(bias, at::full_like(bias, -std::log(99.0)), 0, 1e-6));
  // N(0, 0.01) weights: 64*64*9 samples, the sample std within 5% of 0.01.
  const double sd = params["head.classification_head.conv.1.0.weight"].std().item<double>();
  EXPECT_NEAR(sd, 0.01, 0.0005);
  const at::Tensor box_bias = params["head.regression_head.bbox_reg.bias"];
  EXPECT_TRUE(at::equal(box_bias, at::zeros_like(box_bias)));
}

// backbone.width scales every backbone conv: at 32 each parameter is the width-64 one with its
// channel dimensions halved (the stem's 3 input channels stay), C3..C5 have 64/128/256 channels
// and the FPN is built on them.
TEST(RetinaNet, BackboneWidthHalvesEveryBackboneChannel) {
  RetinaNetOptions half = small_options();
  half.backbone.width = 32;
  RetinaNet narrow(half), full(small_options());
  EXPECT_EQ(narrow->body()->out_channels(), (std::vector<int64_t>{64, 128, 256}));
  // Parameters (the convs) and buffers (the frozen norms' four tensors) alike.
  auto tensors = [](RetinaNet& net) {
    std::map<std::string, at::Tensor> all;
    for (const auto& p : net->named_parameters()) all.emplace(p.key(), p.value());
    for (const auto& b : net->named_buffers()) all.emplace(b.key(), b.value());
    return all;
  };
  const auto want_all = tensors(full);
  int64_t checked = 0;
  for (const auto& [key, value] : tensors(narrow)) {
    if (key.rfind("backbone.body.", 0) != 0) continue;
    std::vector<int64_t> want = want_all.at(key).sizes().vec();
    for (std::size_t d = 0; d < want.size() && d < 2; ++d)
      if (want[d] != 3) want[d] /= 2;
    EXPECT_EQ(value.sizes().vec(), want) << key;
    ++checked;
  }
  EXPECT_EQ(checked, 20 + 20 * 4);  // 20 convs, 20 frozen norms (weight, bias, mean, var)
  torch::NoGradGuard no_grad;
  const auto c = narrow->body()->forward(torch::randn({1, 3, 64, 96}));
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0].sizes(), (at::IntArrayRef{1, 64, 8, 12}));
  EXPECT_EQ(c[2].sizes(), (at::IntArrayRef{1, 256, 2, 3}));
  const RetinaNetOutput out = narrow->forward(torch::randn({1, 3, 64, 96}));
  EXPECT_EQ(out.cls_logits.size(2), 3);
}

TEST(RetinaNet, GroupNormAndP6FromC5Variants) {
  torch::NoGradGuard no_grad;
  RetinaNetOptions o = small_options();
  o.backbone.norm = NormKind::kGroupNorm;
  o.backbone.depth = 34;
  o.head.group_norm = true;
  o.head.gn_groups = 16;
  o.p6_from = P6Source::kC5;
  RetinaNet net(o);
  const auto params = net->named_parameters();
  EXPECT_EQ(params["backbone.fpn.extra_blocks.p6.weight"].size(1), 512);     // C5 of ResNet-34
  EXPECT_TRUE(params.contains("head.classification_head.conv.0.1.weight"));  // the GroupNorm
  EXPECT_FALSE(params.contains("head.classification_head.conv.0.0.bias"));
  EXPECT_TRUE(params.contains("backbone.body.layer3.5.bn2.weight"));  // 6 blocks in layer3
  const RetinaNetOutput out = net->forward(torch::randn({1, 3, 64, 64}));
  EXPECT_TRUE(out.cls_logits.isfinite().all().item<bool>());
}

// groups = 0 reached `channels % groups` (a division by zero) before it was checked.
TEST(RetinaNet, ZeroGroupNormGroupsIsAnError) {
  HeadOptions head;
  head.in_channels = 64;
  head.channels = 64;
  head.group_norm = true;
  head.gn_groups = 0;
  EXPECT_THROW(RetinaNetHead{head}, Error);
  EXPECT_THROW(make_norm(NormKind::kGroupNorm, /*channels=*/64, /*groups=*/0), Error);
}

TEST(RetinaNet, TrainableLayersFreezeTheStem) {
  RetinaNet net(small_options());  // trainable_layers = 3: conv1, layer1 frozen
  const auto params = net->named_parameters();
  EXPECT_FALSE(params["backbone.body.conv1.weight"].requires_grad());
  EXPECT_FALSE(params["backbone.body.layer1.0.conv1.weight"].requires_grad());
  EXPECT_TRUE(params["backbone.body.layer2.0.conv1.weight"].requires_grad());
  EXPECT_TRUE(params["head.classification_head.cls_logits.weight"].requires_grad());
}

TEST(WeightImport, MismatchedNamesAndShapesAreListed) {
  RetinaNet net(small_options());
  const std::string dir = t::make_temp_dir("weights");
  t::save_tensors(dir + "/w.pt", {{"backbone.body.conv1.weight", torch::zeros({64, 3, 3, 3})},
                                  {"backbone.body.nonsense.weight", torch::zeros({2})}});
  try {
    load_weights(*net, dir + "/w.pt");
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("backbone.body.nonsense.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("backbone.body.conv1.weight: file [64, 3, 3, 3], model [64, 3, 7, 7]"),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("in the model but not in the file"), std::string::npos) << msg;
  }
}

TEST(WeightImport, PartialFileLoadsWithAllowMissing) {
  RetinaNet net(small_options());
  const std::string dir = t::make_temp_dir("weights");
  const at::Tensor w = torch::randn({64, 3, 7, 7});
  t::save_tensors(dir + "/w.pt", {{"backbone.body.conv1.weight", w},
                                  {"backbone.body.bn1.num_batches_tracked", torch::zeros({})}});
  EXPECT_THROW(load_weights(*net, dir + "/w.pt"), Error);
  WeightImportOptions o;
  o.allow_missing = true;
  const WeightImportReport r = load_weights(*net, dir + "/w.pt", o);
  EXPECT_EQ(r.loaded, 1);
  EXPECT_TRUE(at::equal(net->named_parameters()["backbone.body.conv1.weight"], w));
}

}  // namespace
}  // namespace focaldet::model

namespace focaldet::model {
namespace {

namespace t = focaldet::test;

// ResNet-18 (BasicBlock) C3..C5 against torchvision's resnet18, loaded from an export made as
// for an ImageNet backbone (backbone.body.*, no classifier; FPN and head missing).
TEST(ResNet, Resnet18MatchesTorchvisionThroughTheBackboneExport) {
  FOCALDET_REQUIRE_PYTHON("torch", "torchvision");
  const std::string dir = t::make_temp_dir("resnet18");
  std::string log;
  ASSERT_EQ(t::run_python(t::source_path("tests/model/oracle.py"),
                          {"resnet", dir, "1", "18", "64", "96"}, &log),
            0)
      << log;
  const auto ref = t::load_tensors(dir + "/ref.pt");
  RetinaNetOptions o = small_options();
  RetinaNet net(o);
  WeightImportOptions w;
  w.allow_missing = true;
  const WeightImportReport r = load_weights(*net, dir + "/weights.pt", w);
  // 20 convs (1 stem + 16 in blocks + 3 shortcuts) + 20 norms x 4 tensors (num_batches_tracked
  // skipped).
  EXPECT_EQ(r.loaded, 20 + 20 * 4);
  EXPECT_GT(r.missing, 0);  // FPN and head
  net->eval();
  torch::NoGradGuard no_grad;
  const auto c = net->body()->forward(ref.at("input"));
  const char* names[] = {"c3", "c4", "c5"};
  for (int i = 0; i < 3; ++i) {
    const at::Tensor want = ref.at(names[i]);
    ASSERT_EQ(c[i].sizes(), want.sizes()) << names[i];
    // 1e-4 relative to the largest activation, as the R50 parity test.
    const double rel = ((c[i] - want).abs().max() / want.abs().max()).item<double>();
    EXPECT_LT(rel, 1e-4) << names[i];
  }
}

}  // namespace
}  // namespace focaldet::model

namespace focaldet::model {
namespace {

TEST(WeightImport, SkipPrefixesLeavesTheClassLayerAtItsInit) {
  // A file for 3 classes loaded into a 5-class model: the class layer's shapes differ.
  RetinaNet source(small_options());
  RetinaNetOptions five = small_options();
  five.head.num_classes = 5;
  RetinaNet target(five);
  const std::string dir = t::make_temp_dir("weights");
  std::map<std::string, at::Tensor> all;
  for (const auto& p : source->named_parameters()) all.emplace(p.key(), p.value());
  for (const auto& b : source->named_buffers()) all.emplace(b.key(), b.value());
  t::save_tensors(dir + "/w.pt", all);
  EXPECT_THROW(load_weights(*target, dir + "/w.pt"), Error);
  WeightImportOptions o;
  o.skip_prefixes = {"head.classification_head.cls_logits."};
  load_weights(*target, dir + "/w.pt", o);
  auto got = target->named_parameters();
  EXPECT_TRUE(at::equal(got["head.classification_head.conv.0.0.weight"],
                        source->named_parameters()["head.classification_head.conv.0.0.weight"]));
  EXPECT_EQ(got["head.classification_head.cls_logits.weight"].size(0), 9 * 5);
}

}  // namespace
}  // namespace focaldet::model

namespace focaldet::model {
namespace {

// retinanet_resnet50_fpn_v2's layout (GroupNorm in the head, P6 from C5, BN backbone) loads by
// name with no leftovers and gives torchvision's head outputs.
TEST(RetinaNet, GroupNormHeadAndP6FromC5MatchTorchvisionV2) {
  FOCALDET_REQUIRE_PYTHON("torch", "torchvision");
  const std::string dir = t::make_temp_dir("retinanet_v2");
  std::string log;
  ASSERT_EQ(t::run_python(t::source_path("tests/model/oracle.py"),
                          {"retinanet_v2", dir, "2", "4", "64", "96"}, &log),
            0)
      << log;
  const auto ref = t::load_tensors(dir + "/ref.pt");
  RetinaNetOptions o;
  o.backbone.norm = NormKind::kBatchNorm;
  o.p6_from = P6Source::kC5;
  o.head.group_norm = true;
  o.head.num_classes = 4;
  RetinaNet net(o);
  load_weights(*net, dir + "/weights.pt");  // strict: every name and shape must fit
  net->eval();
  torch::NoGradGuard no_grad;
  const RetinaNetOutput out = net->forward(ref.at("input"));
  for (const auto& [got, name] :
       {std::pair{out.cls_logits, "cls_logits"}, std::pair{out.box_deltas, "bbox_regression"}}) {
    const at::Tensor want = ref.at(name);
    ASSERT_EQ(got.sizes(), want.sizes()) << name;
    // 1e-4 relative to the largest output, as the R50 parity test.
    EXPECT_LT(((got - want).abs().max() / want.abs().max()).item<double>(), 1e-4) << name;
  }
}

}  // namespace
}  // namespace focaldet::model

namespace focaldet::model {
namespace {

// Training mode end to end (in-place ReLUs must not break autograd) for each norm kind.
TEST(RetinaNet, BackwardReachesHeadAndTrainableBackbone) {
  for (NormKind norm : {NormKind::kFrozenBatchNorm, NormKind::kBatchNorm, NormKind::kGroupNorm}) {
    RetinaNetOptions o = small_options();
    o.backbone.norm = norm;
    RetinaNet net(o);
    net->train();
    const RetinaNetOutput out = net->forward(torch::randn({2, 3, 64, 64}));
    (out.cls_logits.sum() + out.box_deltas.sum()).backward();
    auto params = net->named_parameters();
    for (const char* name :
         {"head.classification_head.cls_logits.weight", "head.regression_head.conv.0.0.weight",
          "backbone.fpn.extra_blocks.p7.weight", "backbone.body.layer4.1.conv2.weight",
          "backbone.body.layer2.0.conv1.weight"}) {
      const at::Tensor g = params[name].grad();
      ASSERT_TRUE(g.defined()) << name;
      EXPECT_TRUE(g.isfinite().all().item<bool>()) << name;
      EXPECT_GT(g.abs().sum().item<double>(), 0) << name;
    }
    EXPECT_FALSE(params["backbone.body.layer1.0.conv1.weight"].grad().defined());  // frozen
  }
}

}  // namespace
}  // namespace focaldet::model

namespace focaldet::model {
namespace {

// The GEMM path (model::gemm_winograd) against a double-precision conv2d, on shapes with
// partial tiles at every border, batches, tiny maps and no bias; F(4x4, 3x3) in float rounds
// to ~1e-5 of the largest output.
TEST(GemmWinograd, MatchesConv2dAndItsGradientsInDoublePrecision) {
  struct Shape {
    int64_t n, c, h, w, o;
    bool bias;
  };
  for (const Shape s : {Shape{2, 16, 13, 22, 24, true}, Shape{1, 8, 4, 4, 8, false},
                        Shape{3, 5, 1, 7, 6, true}, Shape{1, 64, 17, 9, 70, false}}) {
    const std::string where = std::to_string(s.n) + "x" + std::to_string(s.c) + "x" +
                              std::to_string(s.h) + "x" + std::to_string(s.w) + "->" +
                              std::to_string(s.o);
    const at::Tensor x = torch::randn({s.n, s.c, s.h, s.w}).requires_grad_();
    const at::Tensor w = (torch::randn({s.o, s.c, 3, 3}) / std::sqrt(9.0 * s.c)).requires_grad_();
    const at::Tensor b = s.bias ? torch::randn({s.o}).requires_grad_() : at::Tensor();
    const at::Tensor upstream = torch::randn({s.n, s.o, s.h, s.w});
    const at::Tensor got = gemm_winograd::conv2d(x, w, b);
    EXPECT_NE(got.grad_fn()->name().find("gemm_winograd"), std::string::npos)
        << got.grad_fn()->name();
    std::vector<at::Tensor> inputs = {x, w};
    if (s.bias) inputs.push_back(b);
    const auto got_grads = torch::autograd::grad({got}, inputs, {upstream});
    std::vector<at::Tensor> ref_inputs;
    for (const at::Tensor& t : inputs) {
      ref_inputs.push_back(t.detach().to(at::kDouble).requires_grad_());
    }
    const at::Tensor want =
        at::conv2d(ref_inputs[0], ref_inputs[1], s.bias ? ref_inputs[2] : at::Tensor(), 1, 1);
    const auto want_grads = torch::autograd::grad({want}, ref_inputs, {upstream.to(at::kDouble)});
    auto rel = [](const at::Tensor& a, const at::Tensor& ref) {
      return ((a.to(at::kDouble) - ref).abs().max() / ref.abs().max()).item<double>();
    };
    EXPECT_LT(rel(got, want), 3e-5) << where;
    EXPECT_LT(rel(got_grads[0], want_grads[0]), 3e-5) << where << " d/dx";
    EXPECT_LT(rel(got_grads[1], want_grads[1]), 3e-5) << where << " d/dw";
    if (s.bias) EXPECT_LT(rel(got_grads[2], want_grads[2]), 1e-5) << where << " d/db";
    // Inference from a transformed weight: the same numbers, no autograd.
    torch::NoGradGuard no_grad;
    const at::Tensor y = gemm_winograd::forward(x, gemm_winograd::transform_weight(w), b);
    EXPECT_LT(rel(y, want), 3e-5) << where << " forward";
    // The ReLU fused into the output transform: exactly relu of the same output.
    const at::Tensor fused =
        gemm_winograd::forward(x, gemm_winograd::transform_weight(w), b, /*relu=*/true);
    EXPECT_TRUE(at::equal(fused, y.relu())) << where << " fused ReLU";
  }
}

// Where oneDNN has no Winograd (this kind of CPU without AVX-512, or no libdnnl-dev),
// winograd_conv2d takes the GEMM path on a shape where it pays and the direct conv elsewhere;
// WinogradInference keeps the transformed weight per generation and follows a new one.
TEST(GemmWinograd, DispatchAndInferenceCacheFollowTheWeight) {
  const at::Tensor x = torch::randn({1, 128, 48, 48});
  const at::Tensor w = torch::randn({64, 128, 3, 3}) * 0.05, b = torch::randn({64});
  ASSERT_TRUE(gemm_winograd::pays(1, 64, 64, 48, 48, true));
  ASSERT_FALSE(gemm_winograd::pays(1, 16, 64, 48, 48, true));
  ASSERT_FALSE(gemm_winograd::pays(1, 64, 64, 8, 8, true));
  ASSERT_TRUE(winograd_pays(1, 64, 64, 48, 48, true));
  const at::Tensor xg = x.clone().requires_grad_();
  const std::string name = winograd_conv2d(xg, w, b).grad_fn()->name();
  if (WinogradHead::available()) {
    EXPECT_EQ(name.find("gemm_winograd"), std::string::npos) << name;  // oneDNN's kernel
  } else {
    EXPECT_NE(name.find("gemm_winograd"), std::string::npos) << name;
  }
  torch::NoGradGuard no_grad;
  auto rel = [](const at::Tensor& a, const at::Tensor& ref) {
    return ((a - ref).abs().max() / ref.abs().max()).item<double>();
  };
  WinogradInference inference;
  EXPECT_LT(rel(inference.forward(x, w, b, 1), at::conv2d(x, w, b, 1, 1)), 3e-5);
  const at::Tensor w2 = w * -2 + 0.01;
  EXPECT_LT(rel(inference.forward(x, w2, b, 2), at::conv2d(x, w2, b, 1, 1)), 3e-5);
  ASSERT_TRUE(gemm_winograd::pays(1, 128, 64, 48, 48, false));
  ASSERT_FALSE(gemm_winograd::pays(1, 128, 64, 6, 6, false));
  const at::Tensor small = torch::randn({1, 128, 6, 6});  // direct conv: the GEMM does not pay
  EXPECT_LT(rel(inference.forward(small, w2, b, 2), at::conv2d(small, w2, b, 1, 1)), 1e-5);
}

}  // namespace
}  // namespace focaldet::model
