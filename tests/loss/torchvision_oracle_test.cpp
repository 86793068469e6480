// An oracle nobody here wrote: torchvision.ops.sigmoid_focal_loss from Debian's
// python3-torchvision, on random inputs; values and gradients must agree.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "loss/sigmoid_focal.h"
#include "loss_test_util.h"
#include "support/oracle.h"

namespace focaldet::loss {
namespace {

TEST(SigmoidFocalOracle, AgreesWithTorchvisionValuesAndGradients) {
  FOCALDET_REQUIRE_PYTHON("torch", "torchvision");
  const std::string dir = test::make_temp_dir("focal_oracle");
  torch::manual_seed(41);
  const int64_t n = 500, c = 6;
  // torchvision has no background/ignore encoding: every row is a class or background here.
  auto t = test::random_targets(n, c, 42).clamp_min(-1);
  const auto x = torch::randn({n, c}, torch::kDouble) * 5;
  auto one_hot = torch::zeros({n, c}, torch::kDouble);
  const auto pos = t.ge(0).nonzero().squeeze(1);
  one_hot.index_put_({pos, t.index({pos})}, 1.0);

  for (auto [alpha, gamma] : {std::pair{0.25, 2.0}, std::pair{-1.0, 0.0}, std::pair{0.6, 1.5}}) {
    const std::string in = dir + "/in.pt", out = dir + "/out.pt";
    test::save_tensors(in, {{"logits", x},
                            {"one_hot", one_hot},
                            {"alpha", torch::tensor({alpha}, torch::kDouble)},
                            {"gamma", torch::tensor({gamma}, torch::kDouble)}});
    std::string log;
    ASSERT_EQ(test::run_python(test::source_path("tests/loss/torchvision_focal_oracle.py"),
                               {in, out}, &log),
              0)
        << log;
    const auto want = test::load_tensors(out);

    FocalOptions o;
    o.alpha = alpha;
    o.gamma = gamma;
    o.reduction = Reduction::None;
    const auto xg = x.clone().requires_grad_(true);
    const auto got = sigmoid_focal_loss(xg, t, o);
    got.sum().backward();
    // torchvision computes p_t and BCE separately in float64; agreement to 1e-9 relative.
    EXPECT_TRUE(torch::allclose(got, want.at("loss"), 1e-9, 1e-12)) << "alpha " << alpha;
    EXPECT_TRUE(torch::allclose(xg.grad(), want.at("grad"), 1e-9, 1e-12)) << "alpha " << alpha;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace focaldet::loss
