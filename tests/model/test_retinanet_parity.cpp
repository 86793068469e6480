// retinanet_resnet50_fpn against torchvision 0.14 on the same seeded random weights and input
// (tests/model/oracle.py exports them; we load them by name): P3..P7, head outputs, anchors and
// post-processed detections. "Relative error" below is max|ours - ref| / max|ref| over a tensor.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <map>
#include <string>
#include <vector>

#include "anchors/anchor_generator.h"
#include "infer/postprocess.h"
#include "model/retinanet.h"
#include "model/weight_import.h"
#include "support/oracle.h"

namespace focaldet::model {
namespace {

namespace t = focaldet::test;

constexpr int64_t kClasses = 5, kHeight = 128, kWidth = 160;
// The batch's two images: the second is smaller than the padded batch (as oracle.py says).
const std::vector<infer::ImageInfo> kImages = {{{kHeight, kWidth}, 1.0},
                                               {{kHeight - 28, kWidth - 10}, 1.0}};

double relative_error(const at::Tensor& got, const at::Tensor& want) {
  return ((got - want).abs().max() / want.abs().max()).item<double>();
}

class RetinaNetParity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Checked once here, not per test (importing torchvision takes seconds).
    *missing_ = t::python_missing({"torch", "torchvision"});
    if (!missing_->empty()) return;
    dir_ = new std::string(t::make_temp_dir("retinanet"));
    std::string log;
    const int rc = t::run_python(t::source_path("tests/model/oracle.py"),
                                 {"retinanet", *dir_, "0", std::to_string(kClasses),
                                  std::to_string(kHeight), std::to_string(kWidth)},
                                 &log);
    if (rc != 0) {
      *log_ = log;
      return;
    }
    ref_ = new std::map<std::string, at::Tensor>(t::load_tensors(*dir_ + "/ref.pt"));
    RetinaNetOptions o;
    o.head.num_classes = kClasses;
    model_ = new RetinaNet(o);
    load_weights(**model_, *dir_ + "/weights.pt");
    (*model_)->eval();
  }
  void SetUp() override {
    ASSERT_TRUE(missing_->empty()) << "oracle not run: " << *missing_;
    ASSERT_NE(ref_, nullptr) << "oracle.py failed: " << *log_;
  }
  static at::Tensor ref(const std::string& name) { return ref_->at(name); }
  static RetinaNet& model() { return *model_; }

  static std::string* dir_;
  static std::string* log_;
  static std::string* missing_;
  static std::map<std::string, at::Tensor>* ref_;
  static RetinaNet* model_;
};
std::string* RetinaNetParity::dir_ = nullptr;
std::string* RetinaNetParity::log_ = new std::string;
std::string* RetinaNetParity::missing_ = new std::string;
std::map<std::string, at::Tensor>* RetinaNetParity::ref_ = nullptr;
RetinaNet* RetinaNetParity::model_ = nullptr;

TEST_F(RetinaNetParity, FeaturesMatchTorchvision) {
  torch::NoGradGuard no_grad;
  const auto p = model()->features(ref("input"));
  ASSERT_EQ(p.size(), 5u);
  for (int l = 0; l < 5; ++l) {
    const at::Tensor want = ref("p" + std::to_string(l + 3));
    ASSERT_EQ(p[l].sizes(), want.sizes()) << "P" << l + 3;
    // float32 through ~55 layers with a different BN formula: 1e-4 relative (the bar).
    EXPECT_LT(relative_error(p[l], want), 1e-4) << "P" << l + 3;
  }
}

TEST_F(RetinaNetParity, HeadOutputsMatchTorchvision) {
  torch::NoGradGuard no_grad;
  const RetinaNetOutput out = model()->forward(ref("input"));
  ASSERT_EQ(out.cls_logits.sizes(), ref("cls_logits").sizes());
  ASSERT_EQ(out.box_deltas.sizes(), ref("bbox_regression").sizes());
  EXPECT_LT(relative_error(out.cls_logits, ref("cls_logits")), 1e-4);
  EXPECT_LT(relative_error(out.box_deltas, ref("bbox_regression")), 1e-4);
}

TEST_F(RetinaNetParity, AnchorsMatchTorchvision) {
  torch::NoGradGuard no_grad;
  const RetinaNetOutput out = model()->forward(ref("input"));
  anchors::AnchorGenerator gen;
  const at::Tensor a = gen.anchors({kHeight, kWidth}, out.feature_sizes, at::kCPU);
  ASSERT_EQ(a.sizes(), ref("anchors").sizes());
  EXPECT_TRUE(at::equal(a, ref("anchors")));  // integer-valued: exact
  EXPECT_EQ(a.size(0), out.cls_logits.size(1));
}

// Same detections in the same order: labels exact, scores and boxes to `score_tol` / `box_tol`.
void expect_same_detections(const infer::Detections& got, const at::Tensor& boxes,
                            const at::Tensor& scores, const at::Tensor& labels, double score_tol,
                            double box_tol) {
  SCOPED_TRACE(::testing::Message() << got.labels.size(0) << " detections");
  ASSERT_EQ(got.labels.size(0), labels.size(0));
  EXPECT_TRUE(at::equal(got.labels, labels));
  EXPECT_TRUE(at::allclose(got.scores, scores, /*rtol=*/0, /*atol=*/score_tol))
      << (got.scores - scores).abs().max();
  EXPECT_TRUE(at::allclose(got.boxes, boxes, /*rtol=*/0, /*atol=*/box_tol))
      << (got.boxes - boxes).abs().max();
}

std::vector<int64_t> per_level(const std::vector<std::pair<int64_t, int64_t>>& sizes) {
  return anchors::AnchorGenerator().num_anchors_per_level(sizes);
}

TEST_F(RetinaNetParity, PostprocessOfTorchvisionHeadOutputsMatchesTorchvision) {
  // Torchvision's own head outputs and anchors through our post-processing: the same inputs,
  // so only float rounding of decode (a few ulp of pixel coordinates < 160) may differ.
  std::vector<std::pair<int64_t, int64_t>> sizes;
  for (int l = 3; l <= 7; ++l) {
    sizes.emplace_back(ref("p" + std::to_string(l)).size(2), ref("p" + std::to_string(l)).size(3));
  }
  const auto dets = infer::postprocess(ref("cls_logits"), ref("bbox_regression"), ref("anchors"),
                                       per_level(sizes), kImages);
  ASSERT_EQ(dets.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    const std::string n = std::to_string(i);
    ASSERT_EQ(ref("labels" + n).size(0), 100);  // the test exercises the detections_per_img cut
    expect_same_detections(dets[i], ref("boxes" + n), ref("scores" + n), ref("labels" + n), 1e-7,
                           1e-4);
  }
  // Image 1 was clipped to its own size, not the batch's.
  EXPECT_LE(dets[1].boxes.select(1, 2).max().item<float>(), kWidth - 10);
  EXPECT_LE(dets[1].boxes.select(1, 3).max().item<float>(), kHeight - 28);
}

TEST_F(RetinaNetParity, EndToEndDetectionsMatchTorchvision) {
  torch::NoGradGuard no_grad;
  const RetinaNetOutput out = model()->forward(ref("input"));
  anchors::AnchorGenerator gen;
  const at::Tensor a = gen.anchors({kHeight, kWidth}, out.feature_sizes, at::kCPU);
  const auto dets = infer::postprocess(out.cls_logits, out.box_deltas, a,
                                       gen.num_anchors_per_level(out.feature_sizes), kImages);
  // Logits agree to ~1e-4 relative, so scores to ~1e-5 and boxes to ~1e-3 px.
  for (int i = 0; i < 2; ++i) {
    const std::string n = std::to_string(i);
    expect_same_detections(dets[i], ref("boxes" + n), ref("scores" + n), ref("labels" + n), 1e-5,
                           1e-2);
  }
}

TEST_F(RetinaNetParity, ScaleMapsDetectionsBackToTheOriginalImage) {
  std::vector<std::pair<int64_t, int64_t>> sizes;
  for (int l = 3; l <= 7; ++l) {
    sizes.emplace_back(ref("p" + std::to_string(l)).size(2), ref("p" + std::to_string(l)).size(3));
  }
  // Image 1 as a 0.5x resize of a twice-as-large original: its boxes double.
  const auto dets = infer::postprocess(ref("cls_logits"), ref("bbox_regression"), ref("anchors"),
                                       per_level(sizes), {kImages[0], {kImages[1].size, 0.5}});
  expect_same_detections(dets[0], ref("boxes0"), ref("scores0"), ref("labels0"), 1e-7, 1e-4);
  expect_same_detections(dets[1], ref("boxes1") * 2, ref("scores1"), ref("labels1"), 1e-7, 2e-4);
}

}  // namespace
}  // namespace focaldet::model
