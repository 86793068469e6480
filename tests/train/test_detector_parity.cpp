// The composed training losses (train::Detector::losses with NormalizeMode::PerImage) against
// torchvision 0.14's RetinaNet.compute_loss on the same weights, image and boxes: focaldet's
// state dict goes to tests/train/detector_oracle.py, which loads it by name into torchvision's
// RetinaNet (ResNet-18, frozen BN, FPN and 4-conv head of 64 channels, P6 from P5, 3 classes,
// default anchors) and computes the losses on the same padded tensor. And one case without
// Python, computed by hand. "Relative error" is |ours - ref| / |ref|.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/types.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "support/oracle.h"
#include "train/detector.h"

namespace focaldet::train {
namespace {

namespace t = focaldet::test;

constexpr int64_t kDepth = 18, kChannels = 64, kClasses = 3, kHeight = 128, kWidth = 160;

DetectorOptions parity_options() {
  DetectorOptions o;
  o.model.backbone.depth = kDepth;
  o.model.backbone.norm = model::NormKind::kFrozenBatchNorm;
  o.model.fpn_channels = kChannels;
  o.model.head.num_convs = 4;  // torchvision 0.14's RetinaNetHead has 4, fixed
  o.model.head.channels = kChannels;
  o.model.head.num_classes = kClasses;
  o.assigner = AssignerKind::MaxIoU;
  o.max_iou = {};  // 0.5 / 0.4 with low-quality matches, torchvision's Matcher
  o.cls.kind = loss::ClsLossKind::Focal;
  o.cls.alpha = 0.25;
  o.cls.gamma = 2.0;
  o.box = BoxLossKind::L1;
  o.normalize = NormalizeMode::PerImage;
  return o;
}

// A batch of `images` ([B, 3, H, W], already normalised and padded) with boxes in its pixels.
data::Batch make_batch(const at::Tensor& images, const std::vector<at::Tensor>& boxes,
                       const std::vector<at::Tensor>& labels) {
  data::Batch b;
  b.images = images;
  for (int64_t i = 0; i < images.size(0); ++i) {
    b.boxes.push_back(boxes[i]);
    b.labels.push_back(labels[i]);
    b.crowd_boxes.push_back(at::zeros({0, 4}));
    b.image_ids.push_back(i + 1);
    b.scales.push_back(1.0);
    const int h = static_cast<int>(images.size(2)), w = static_cast<int>(images.size(3));
    b.original_sizes.push_back({h, w});
    b.image_sizes.push_back({h, w});
    b.flipped.push_back(false);
  }
  return b;
}

at::Tensor box_tensor(const std::vector<std::vector<float>>& rows) {
  at::Tensor out = at::zeros({static_cast<int64_t>(rows.size()), 4});
  for (size_t i = 0; i < rows.size(); ++i) {
    for (int j = 0; j < 4; ++j) out[i][j] = rows[i][j];
  }
  return out;
}

// Random BN statistics and a head whose probabilities spread over (0, 1) and whose deltas are
// not ~0, as tests/model/oracle.py does: with focaldet's init (every anchor at p = 0.01, box
// outputs ~0) a wrong sign or a missing term could hide in a loss that barely depends on them.
// The output convs are then rescaled on `images` so logits have std ~1.5 around a bias of -1.5
// and deltas std ~0.3 (unsaturated probabilities; boxes near their anchors).
void randomize(model::RetinaNet& m, const at::Tensor& images) {
  torch::NoGradGuard no_grad;
  auto ends_with = [](const std::string& s, const std::string& end) {
    return s.size() >= end.size() && s.compare(s.size() - end.size(), end.size(), end) == 0;
  };
  for (auto& b : m->named_buffers()) {  // frozen BN's four buffers
    const std::string& n = b.key();
    at::Tensor v = b.value();
    if (ends_with(n, ".running_var") || ends_with(n, ".weight")) {
      v.uniform_(0.5, 1.5);
    } else {  // running_mean, bias
      v.normal_(0, 0.1);
    }
  }
  auto params = m->named_parameters();
  for (auto& p : params) {
    if (p.key().rfind("head.", 0) != 0) continue;
    p.value().normal_(0, ends_with(p.key(), ".bias") ? 0.1 : 0.03);
  }
  at::Tensor cls_w = params["head.classification_head.cls_logits.weight"];
  at::Tensor cls_b = params["head.classification_head.cls_logits.bias"];
  at::Tensor box_w = params["head.regression_head.bbox_reg.weight"];
  cls_b.normal_(-1.5, 0.5);
  const model::RetinaNetOutput out = m->forward(images);
  const at::Tensor cls_b_per_anchor = cls_b.view({-1, kClasses}).mean(0);
  cls_w.mul_(1.5 / (out.cls_logits - cls_b_per_anchor).std().item<double>());
  box_w.mul_(0.3 / out.box_deltas.std().item<double>());
}

class DetectorParity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Checked once here, not per test (importing torchvision takes seconds).
    *missing_ = t::python_missing({"torch", "torchvision"});
    if (!missing_->empty()) return;
    torch::manual_seed(0);
    const at::Tensor images = at::randn({2, 3, kHeight, kWidth});
    detector_ = new Detector(parity_options());
    randomize(detector_->model(), images);
    detector_->model()->train();  // frozen BN: the same as eval

    std::map<std::string, at::Tensor> weights;
    for (const auto& p : detector_->model()->named_parameters()) {
      weights[p.key()] = p.value().detach();
    }
    for (const auto& b : detector_->model()->named_buffers()) {
      weights[b.key()] = b.value().detach();
    }
    inputs_ = new std::map<std::string, at::Tensor>{
        {"images", images},
        // Image 0: two mid-size boxes and a 10 x 8 one (IoU < 0.1 with any anchor, the
        // smallest being ~32 x 32) that only low-quality matching keeps.
        {"boxes0", box_tensor({{10, 12, 60, 70}, {70, 30, 150, 110}, {100, 5, 110, 13}})},
        {"labels0", at::tensor(std::vector<int64_t>{0, 2, 1})},
        {"boxes1", box_tensor({{20, 40, 52, 72}, {5, 5, 120, 100}})},
        {"labels1", at::tensor(std::vector<int64_t>{1, 1})}};
    dir_ = new std::string(t::make_temp_dir("detector_parity"));
    t::save_tensors(*dir_ + "/weights.pt", weights);
    t::save_tensors(*dir_ + "/inputs.pt", *inputs_);
    std::string log;
    const int rc = t::run_python(
        t::source_path("tests/train/detector_oracle.py"),
        {*dir_, std::to_string(kDepth), std::to_string(kChannels), std::to_string(kClasses)}, &log);
    if (rc != 0) {
      *log_ = log;
      return;
    }
    ref_ = new std::map<std::string, at::Tensor>(t::load_tensors(*dir_ + "/ref.pt"));
  }
  static void TearDownTestSuite() {
    if (dir_ != nullptr) std::filesystem::remove_all(*dir_);
  }
  void SetUp() override {
    ASSERT_TRUE(missing_->empty()) << "oracle not run: " << *missing_;
    ASSERT_NE(ref_, nullptr) << "detector_oracle.py failed: " << *log_;
  }

  static at::Tensor input(const std::string& name) { return inputs_->at(name); }
  static double ref(const std::string& name) { return ref_->at(name).item<double>(); }

  // Our losses for a case of detector_oracle.py against its values.
  static void expect_case_matches(const std::string& name, const data::Batch& batch) {
    SCOPED_TRACE(name);
    const TrainLosses got = detector_->losses(batch);
    EXPECT_EQ(got.num_pos, static_cast<int64_t>(ref(name + "_num_pos")));
    ASSERT_GT(got.num_pos, 0);
    // Both sides run the same LibTorch 1.13 kernels on float32, but not the same op
    // sequence: the loss sums ~11,500 focal terms and a few hundred L1 terms in another order
    // and with other intermediates (we see ~1e-7 relative). 1e-4 relative leaves room for
    // other builds and thread counts (conv algorithms, reduction order), while a missing term,
    // a wrong normaliser or a swapped alpha is off by > 1e-2.
    EXPECT_NEAR(got.cls, ref(name + "_cls"), 1e-4 * std::abs(ref(name + "_cls")));
    EXPECT_NEAR(got.box, ref(name + "_box"), 1e-4 * std::abs(ref(name + "_box")));
    EXPECT_NEAR(got.total.item<double>(), got.cls + got.box, 1e-6 * (got.cls + got.box));
    EXPECT_NEAR(got.breakdown.total(), got.cls, 1e-5 * got.cls);
  }

  static std::string* dir_;
  static std::string* log_;
  static std::string* missing_;
  static std::map<std::string, at::Tensor>* inputs_;
  static std::map<std::string, at::Tensor>* ref_;
  static Detector* detector_;
};
std::string* DetectorParity::dir_ = nullptr;
std::string* DetectorParity::log_ = new std::string;
std::string* DetectorParity::missing_ = new std::string;
std::map<std::string, at::Tensor>* DetectorParity::inputs_ = nullptr;
std::map<std::string, at::Tensor>* DetectorParity::ref_ = nullptr;
Detector* DetectorParity::detector_ = nullptr;

TEST_F(DetectorParity, OneImageLossesMatchTorchvisionComputeLoss) {
  expect_case_matches(
      "one", make_batch(input("images").slice(0, 0, 1), {input("boxes0")}, {input("labels0")}));
}

TEST_F(DetectorParity, TwoImagePerImageLossesMatchTorchvisionComputeLoss) {
  expect_case_matches("two", make_batch(input("images"), {input("boxes0"), input("boxes1")},
                                        {input("labels0"), input("labels1")}));
}

TEST_F(DetectorParity, ImageWithoutBoxesMatchesTorchvisionComputeLoss) {
  // torchvision: all of the image's anchors are background, normalised by max(1, 0) = 1.
  expect_case_matches("empty", make_batch(input("images"), {input("boxes0"), at::zeros({0, 4})},
                                          {input("labels0"), at::zeros({0}, at::kLong)}));
}

TEST_F(DetectorParity, GradientsMatchTorchvision) {
  detector_->model()->zero_grad();
  const TrainLosses got = detector_->losses(make_batch(
      input("images"), {input("boxes0"), input("boxes1")}, {input("labels0"), input("labels1")}));
  got.total.backward();
  const auto params = detector_->model()->named_parameters();
  int compared = 0;
  for (const auto& [key, want] : *ref_) {
    const std::string prefix = "two_grad.";
    if (key.rfind(prefix, 0) != 0) continue;
    const std::string name = key.substr(prefix.size());
    SCOPED_TRACE(name);
    const at::Tensor* p = params.find(name);
    ASSERT_NE(p, nullptr);
    ASSERT_TRUE(p->grad().defined());
    ASSERT_EQ(p->grad().sizes(), want.sizes());
    // Gradients go back through ~30 float32 layers: 1e-3 of the largest entry (we see
    // < 1e-6), far below what a wrong loss term would change.
    const double err = ((p->grad() - want).abs().max() / want.abs().max()).item<double>();
    EXPECT_LT(err, 1e-3);
    ++compared;
  }
  EXPECT_EQ(compared, 6);
}

// Without Python: one gt box that equals exactly one anchor, the output convs zeroed so every
// logit is the class bias b and every delta 0. Anchors are one square per location, sizes
// 16..256 at strides 8..128, so anchor side / stride = 2: the neighbours of the matched anchor
// overlap the box by IoU 1/3 (< 0.4: background) and no other level comes closer.
TEST(DetectorParityByHand, AnchorEqualToTheBoxGivesZeroBoxLossAndTheFocalLossByHand) {
  DetectorOptions o = parity_options();
  o.anchors.base_sizes = {16, 32, 64, 128, 256};
  o.anchors.octave_scales = {1.0};
  o.anchors.aspect_ratios = {1.0};
  Detector detector(o);
  const double b = -3.0;
  {
    torch::NoGradGuard no_grad;
    auto params = detector.model()->named_parameters();
    params["head.classification_head.cls_logits.weight"].zero_();
    params["head.classification_head.cls_logits.bias"].fill_(b);
    params["head.regression_head.bbox_reg.weight"].zero_();
    params["head.regression_head.bbox_reg.bias"].zero_();
  }
  // 128 x 128: P3..P7 are 16, 8, 4, 2, 1 locations a side, 341 anchors. The P3 anchor at
  // (x, y) = (8, 8) is centred on (64, 64) with side 16.
  constexpr int64_t kAnchors = 16 * 16 + 8 * 8 + 4 * 4 + 2 * 2 + 1;
  const int64_t label = 2;
  const data::Batch batch =
      make_batch(at::randn({1, 3, 128, 128}), {box_tensor({{56, 56, 72, 72}})},
                 {at::tensor(std::vector<int64_t>{label})});
  const TrainLosses got = detector.losses(batch);

  EXPECT_EQ(got.num_pos, 1);
  EXPECT_EQ(got.breakdown.num_pos, 1);
  EXPECT_EQ(got.breakdown.num_ignored, 0);
  EXPECT_EQ(got.breakdown.num_neg_easy + got.breakdown.num_neg_hard, kAnchors - 1);
  // Zero deltas against a zero encoding (the box is its anchor): the L1 sum is exactly 0.
  EXPECT_DOUBLE_EQ(got.box, 0.0);

  // Focal loss, in double: p = sigmoid(b) for every logit. The positive's own class:
  // alpha (1 - p)^2 (-log p); every other term (its other classes, all background anchors):
  // (1 - alpha) p^2 (-log(1 - p)). Normaliser max(1, positives) = 1.
  const double alpha = 0.25, p = 1 / (1 + std::exp(-b));
  const double pos_term = alpha * (1 - p) * (1 - p) * -std::log(p);
  const double neg_term = (1 - alpha) * p * p * -std::log(1 - p);
  const double want_pos = pos_term + (kClasses - 1) * neg_term;
  const double want_neg = (kAnchors - 1) * kClasses * neg_term;
  // Float32 terms summed over ~1,000 entries: 1e-5 relative.
  EXPECT_NEAR(got.breakdown.loss_pos, want_pos, 1e-5 * want_pos);
  // p = 0.047 < easy_prob 0.1: every background anchor is easy.
  EXPECT_EQ(got.breakdown.num_neg_hard, 0);
  EXPECT_NEAR(got.breakdown.loss_neg_easy, want_neg, 1e-5 * want_neg);
  EXPECT_NEAR(got.cls, want_pos + want_neg, 1e-5 * (want_pos + want_neg));
  EXPECT_NEAR(got.breakdown.total(), got.cls, 1e-6 * got.cls);
}

}  // namespace
}  // namespace focaldet::train
