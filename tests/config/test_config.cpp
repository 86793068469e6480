// Reading configs: defaults, base inheritance, --set, path resolution, to_yaml round trip and
// where(). The malformed inputs are in test_config_malformed.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "common/error.h"
#include "config/config_io.h"
#include "config_test_util.h"

namespace focaldet::config::test {
namespace {

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override { write_stub_dataset(dir_); }
  // Writes x.yaml (or `name`) in the temp folder and loads it.
  Config load(const std::string& yaml, const std::vector<std::string>& overrides = {},
              const std::string& name = "x.yaml") {
    return load_config(dir_.write(name, yaml), overrides);
  }
  std::string error_of(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
    try {
      load(yaml, overrides);
    } catch (const Error& e) {
      return e.what();
    }
    ADD_FAILURE() << "no error";
    return "";
  }
  TempDir dir_;
};

TEST_F(ConfigTest, AbsentKeysKeepTheDefaultsOfConfigH) {
  const Config got = load(kMinimal);
  Config want;  // config.h is the spec of the defaults
  want.run.name = "x";
  want.data.image_root = dir_ / "data/images";
  want.data.train = dir_ / "data/train.json";
  want.train.max_iters = 10;
  expect_same_config(got, want);
  EXPECT_EQ(got.path, dir_ / "x.yaml");
}

TEST_F(ConfigTest, EmptySectionsAndNullStringsAreAllowed) {
  const Config c = load(std::string(kMinimal) + "loss:\nrun:\n  name: mine\n", {"data.val="});
  EXPECT_EQ(c.run.name, "mine");
  EXPECT_EQ(c.data.val, "");
}

TEST_F(ConfigTest, RunNameDefaultsToTheTopLevelFileStem) {
  dir_.write("bases/common.yaml",
             "data: {image_root: ../data/images, train: ../data/train.json}\n"
             "train: {max_iters: 1}\n");
  EXPECT_EQ(load("base: bases/common.yaml\n", {}, "bccd_focal.yaml").run.name, "bccd_focal");
  EXPECT_EQ(load(std::string(kMinimal) + "run:\n  name: given\n").run.name, "given");
  EXPECT_EQ(load(kMinimal, {"run.name=from_set"}).run.name, "from_set");
}

TEST_F(ConfigTest, KeysUseTheStructFieldNamesInEverySection) {
  const Config c = load(std::string(kMinimal) +
                        "loss: {cls: ce, alpha: -1, gamma: 0}\n"
                        "model: {depth: 34, anchors: {base_sizes: [16, 32], aspect_ratios: [1]}}\n"
                        "assigner: {kind: atss, atss_top_k: 5}\n"
                        "optimizer: {name: adamw, lr: 3e-4, nesterov: true}\n"
                        "schedule: {kind: step, steps: [0.5, 0.9]}\n"
                        "eval: {split: test}\n"
                        "inference: {nms_thresh: 0.6}\n"
                        "run: {seed: 18446744073709551615, threads: 2}\n");
  EXPECT_EQ(c.loss.cls, "ce");
  EXPECT_EQ(c.loss.alpha, -1.0);
  EXPECT_EQ(c.loss.gamma, 0.0);
  EXPECT_EQ(c.model.depth, 34);
  EXPECT_EQ(c.model.anchors.base_sizes, (std::vector<double>{16, 32}));
  EXPECT_EQ(c.model.anchors.aspect_ratios, (std::vector<double>{1}));
  EXPECT_EQ(c.assigner.kind, "atss");
  EXPECT_EQ(c.assigner.atss_top_k, 5);
  EXPECT_EQ(c.optimizer.name, "adamw");
  EXPECT_EQ(c.optimizer.lr, 3e-4);  // the same decimal parsed twice: exact
  EXPECT_TRUE(c.optimizer.nesterov);
  EXPECT_EQ(c.schedule.steps, (std::vector<double>{0.5, 0.9}));
  EXPECT_EQ(c.eval.split, "test");
  EXPECT_EQ(c.inference.nms_thresh, 0.6);
  EXPECT_EQ(c.run.seed, std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(c.run.threads, 2);
}

// run.device: the CPU unless a config names a GPU. Whether that GPU can be used is the
// trainer's question (train/device.h, tests/train); here, only what may be written.
TEST_F(ConfigTest, RunDeviceIsCpuByDefaultAndTakesCudaOrCudaN) {
  EXPECT_EQ(load(kMinimal).run.device, "cpu");
  EXPECT_EQ(load(std::string(kMinimal) + "run:\n  device: cuda\n").run.device, "cuda");
  EXPECT_EQ(load(std::string(kMinimal) + "run:\n  device: cuda:1\n").run.device, "cuda:1");
  EXPECT_EQ(load(kMinimal, {"run.device=cuda:12"}).run.device, "cuda:12");
  EXPECT_EQ(load(std::string(kMinimal) + "run:\n  device: cuda\n", {"run.device=cpu"}).run.device,
            "cpu");
  EXPECT_NE(to_yaml(load(kMinimal)).find("device: cpu"), std::string::npos);
}

TEST_F(ConfigTest, RunDeviceOtherThanCpuCudaOrCudaNNamesItsLine) {
  for (const std::string bad : {"gpu", "CUDA", "cuda:", "cuda:-1", "cuda:x", "cuda:1:2", "cuda 0",
                                "mps", "cuda:1234", ""}) {
    const std::string message = error_of(std::string(kMinimal) + "run:\n  device: '" + bad + "'\n");
    EXPECT_NE(message.find("x.yaml:7: run.device: must be cpu, cuda or cuda:N (N a GPU index), "
                           "got '" +
                           bad + "'"),
              std::string::npos)
        << bad << ": " << message;
  }
  const std::string set = error_of(kMinimal, {"run.device=gpu"});
  EXPECT_NE(set.find("--set run.device=gpu: run.device: must be cpu, cuda or cuda:N"),
            std::string::npos)
      << set;
}

TEST_F(ConfigTest, IntegersWrittenAsExactFloatsAreAccepted) {
  const Config c = load(
      "data: {image_root: data/images, train: data/train.json}\n"
      "train: {max_iters: 1e3, batch_size: 4.0}\n");
  EXPECT_EQ(c.train.max_iters, 1000);
  EXPECT_EQ(c.train.batch_size, 4);
}

TEST_F(ConfigTest, BaseIsReadFirstAndTheChildOverridesIt) {
  dir_.write("base.yaml",
             "data:\n"                                 // 1
             "  image_root: data/images\n"             // 2
             "  train: data/train.json\n"              // 3
             "loss:\n"                                 // 4
             "  alpha: 0.5\n"                          // 5
             "  gamma: 3\n"                            // 6
             "model:\n"                                // 7
             "  anchors:\n"                            // 8
             "    base_sizes: [8, 16, 32, 64, 128]\n"  // 9
             "    aspect_ratios: [0.5, 1, 2]\n"        // 10
             "train:\n"                                // 11
             "  max_iters: 10\n");                     // 12
  const Config c = load(
      "base: base.yaml\n"             // 1
      "loss:\n"                       // 2
      "  gamma: 1\n"                  // 3
      "model:\n"                      // 4
      "  anchors:\n"                  // 5
      "    base_sizes: [16, 32]\n");  // 6
  EXPECT_EQ(c.loss.gamma, 1.0);       // the child wins
  EXPECT_EQ(c.loss.alpha, 0.5);       // the base's value where the child is silent
  EXPECT_EQ(c.model.anchors.base_sizes, (std::vector<double>{16, 32}));  // replaced, not merged
  EXPECT_EQ(c.model.anchors.aspect_ratios, (std::vector<double>{0.5, 1, 2}));
  EXPECT_EQ(c.origins.at("loss.gamma"), dir_ / "x.yaml:3");
  EXPECT_EQ(c.origins.at("loss.alpha"), dir_ / "base.yaml:5");
  EXPECT_EQ(c.origins.at("model.anchors.base_sizes"), dir_ / "x.yaml:6");
  EXPECT_EQ(c.run.name, "x");  // the top-level file's stem, not the base's
}

TEST_F(ConfigTest, BasesChainAndResolvePathsAgainstTheirOwnFolder) {
  // x.yaml -> configs/mid.yaml -> configs/bases/root.yaml; each level sets a path.
  dir_.write("configs/bases/root.yaml",
             "data:\n  image_root: ../../data/images\n  train: ../../data/train.json\n"
             "loss:\n  gamma: 5\n  alpha: 0.75\ntrain:\n  max_epochs: 2\n");
  dir_.write("configs/mid.yaml",
             "base: bases/root.yaml\ndata:\n  val: ../data/val.json\nloss:\n  gamma: 4\n");
  const Config c = load("base: configs/mid.yaml\ndata:\n  test: data/test.json\n");
  EXPECT_EQ(c.data.image_root, dir_ / "data/images");
  EXPECT_EQ(c.data.train, dir_ / "data/train.json");
  EXPECT_EQ(c.data.val, dir_ / "data/val.json");
  EXPECT_EQ(c.data.test, dir_ / "data/test.json");
  EXPECT_EQ(c.loss.gamma, 4.0);
  EXPECT_EQ(c.loss.alpha, 0.75);
  EXPECT_EQ(c.train.max_epochs, 2);
  EXPECT_EQ(where(c, "loss.gamma"), dir_ / "configs/mid.yaml:5");
  EXPECT_EQ(where(c, "data.train"), dir_ / "configs/bases/root.yaml:3");
}

TEST_F(ConfigTest, SetOverridesFilesAndIsTypeChecked) {
  const Config c =
      load(std::string(kMinimal) + "loss:\n  gamma: 1\n",
           {"loss.gamma=3", "model.anchors.base_sizes=[16,32]", "model.head_group_norm=true",
            "loss.cls=ohem", "loss.gamma=4.5", "train.max_iters=7"});
  EXPECT_EQ(c.loss.gamma, 4.5);  // later --set beat earlier ones, all beat the file
  EXPECT_EQ(c.model.anchors.base_sizes, (std::vector<double>{16, 32}));
  EXPECT_TRUE(c.model.head_group_norm);
  EXPECT_EQ(c.loss.cls, "ohem");
  EXPECT_EQ(c.train.max_iters, 7);
  EXPECT_EQ(where(c, "loss.gamma"), "--set loss.gamma=4.5");
  EXPECT_EQ(where(c, "model.anchors.base_sizes"), "--set model.anchors.base_sizes=[16,32]");

  EXPECT_NE(error_of(kMinimal, {"train.max_iters=ten"})
                .find("--set train.max_iters=ten: train.max_iters: expected an integer, got 'ten'"),
            std::string::npos);
  EXPECT_NE(error_of(kMinimal, {"data.shorter_sides=800"})
                .find("--set data.shorter_sides=800: data.shorter_sides: expected a list, got "
                      "'800'"),
            std::string::npos);
  EXPECT_NE(error_of(kMinimal, {"model.head_group_norm=1"}).find("expected true or false, got '1'"),
            std::string::npos);
}

TEST_F(ConfigTest, SetCanGiveAWholeSectionAsAFlowMap) {
  const Config c = load(kMinimal, {"loss={gamma: 0, alpha: -1}"});
  EXPECT_EQ(c.loss.gamma, 0.0);
  EXPECT_EQ(c.loss.alpha, -1.0);
}

TEST_F(ConfigTest, SetPathsResolveAgainstTheCurrentFolder) {
  // The config lives in configs/; a --set path is relative to where focaldet runs.
  const Config c = load(
      "data:\n  image_root: ../data/images\n  train: ../data/train.json\n"
      "train:\n  max_iters: 1\nrun:\n  output_dir: ../runs\n",
      {"run.output_dir=out/../my_runs/"}, "configs/x.yaml");
  EXPECT_EQ(c.run.output_dir, "my_runs");
  EXPECT_EQ(c.data.image_root, dir_ / "data/images");
  const Config from_file = load(
      "data:\n  image_root: ../data/images\n  train: ../data/train.json\n"
      "train:\n  max_iters: 1\nrun:\n  output_dir: ../runs\n",
      {}, "configs/x.yaml");
  EXPECT_EQ(from_file.run.output_dir, dir_ / "runs");
}

TEST(ConfigPaths, RelativeStaysRelativeAndIsNormalised) {
  // A checked-in fixture read with a relative path, from the repository root (the tests'
  // working folder): configs/../data/images comes out as data/images under the fixture.
  const Config c = load_config("tests/config/fixtures/configs/tiny.yaml");
  EXPECT_EQ(c.data.image_root, "tests/config/fixtures/data/images");  // set by tiny.yaml
  EXPECT_EQ(c.data.train, "tests/config/fixtures/data/train.json");   // set by base.yaml
  EXPECT_EQ(c.run.output_dir, "runs");  // the default: not resolved against any file
  EXPECT_EQ(c.run.name, "tiny");
  EXPECT_EQ(c.loss.gamma, 0.0);
  EXPECT_EQ(c.loss.alpha, 0.5);
  EXPECT_EQ(where(c, "loss.gamma"), "tests/config/fixtures/configs/tiny.yaml:6");
  EXPECT_EQ(where(c, "loss.alpha"), "tests/config/fixtures/base.yaml:7");
  EXPECT_EQ(where(c, "data.image_root"), "tests/config/fixtures/configs/tiny.yaml:3");
}

TEST(ConfigPaths, ParseConfigResolvesAgainstTheGivenFolder) {
  const std::string text =
      "data:\n  image_root: ../data/images/\n  train: ./../data/train.json\n"
      "train:\n  max_iters: 1\n";
  const Config c = parse_config(text, "inline.yaml", "tests/config/fixtures/configs");
  EXPECT_EQ(c.data.image_root, "tests/config/fixtures/data/images");
  EXPECT_EQ(c.data.train, "tests/config/fixtures/data/train.json");
  EXPECT_EQ(c.run.name, "inline");
  EXPECT_EQ(where(c, "data.train"), "inline.yaml:3");
}

TEST_F(ConfigTest, AbsolutePathsStayAbsolute) {
  dir_.write("elsewhere/x.yaml", std::string("data:\n  image_root: ") + (dir_ / "data/images") +
                                     "\n  train: " + (dir_ / "data/./train.json") +
                                     "\ntrain:\n  max_iters: 1\n");
  const Config c = load_config(dir_ / "elsewhere/x.yaml");
  EXPECT_EQ(c.data.image_root, dir_ / "data/images");
  EXPECT_EQ(c.data.train, dir_ / "data/train.json");
}

TEST_F(ConfigTest, MissingDatasetErrorNamesTheResolvedPath) {
  const std::string message = error_of(
      "data:\n  image_root: ../data/images\n  train: ../data/nope.json\ntrain:\n  max_iters: 1\n");
  // x.yaml is in the temp folder, so ../data is beside it, not in it.
  const std::string resolved = (dir_.path().parent_path() / "data/nope.json").string();
  EXPECT_NE(message.find("x.yaml:3: data.train: no such file '" + resolved + "'"),
            std::string::npos)
      << message;
}

TEST_F(ConfigTest, ValidateReportsEveryProblemAtOnce) {
  const std::string message =
      error_of(std::string(kMinimal) + "loss:\n  gamma: -1\noptimizer:\n  lr: 0\n");
  EXPECT_NE(message.find("x.yaml:7: loss.gamma: must be >= 0, got -1"), std::string::npos);
  EXPECT_NE(message.find("x.yaml:9: optimizer.lr: must be > 0, got 0"), std::string::npos);
}

TEST(ConfigValidate, DefaultConfigLacksDatasetAndBudget) {
  try {
    validate(Config{});
    FAIL() << "a default Config names no dataset and no budget";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("data.train: not set"), std::string::npos) << message;
    EXPECT_NE(message.find("data.image_root: not set"), std::string::npos) << message;
    EXPECT_NE(message.find("train: no training budget"), std::string::npos) << message;
  }
}

TEST(ConfigValidate, NanFailsRangeChecks) {
  Config c = load_config("tests/config/fixtures/configs/tiny.yaml");
  c.loss.gamma = std::nan("");
  EXPECT_THROW(validate(c), Error);
}

TEST(ConfigValidate, GroupNormGroupsMustDivideTheChannels) {
  const std::vector<std::string> gn = {"model.norm=gn", "model.gn_groups=24"};
  EXPECT_THROW(load_config("tests/config/fixtures/configs/tiny.yaml", gn), Error);
  EXPECT_NO_THROW(load_config("tests/config/fixtures/configs/tiny.yaml",
                              {"model.norm=gn", "model.gn_groups=16"}));
  // Off, the groups are not checked.
  EXPECT_NO_THROW(
      load_config("tests/config/fixtures/configs/tiny.yaml", {"model.head_gn_groups=7"}));
}

TEST_F(ConfigTest, ToYamlReadsBackToAnEqualConfig) {
  // Every key differs from its default, so a key to_yaml left out would show.
  Config c = load(
      "run: {name: full, output_dir: out_runs, seed: 42, threads: 3, device: 'cuda:1'}\n"
      "data: {image_root: data/images, train: data/train.json, val: data/val.json,\n"
      "       test: data/test.json, num_classes: 4, num_workers: 1, shorter_sides: [480, 512],\n"
      "       max_size: 1000, hflip_prob: 0.25, vflip_prob: 0.5, pad_divisor: 64,\n"
      "       group_by_aspect_ratio: false, drop_images_without_boxes: true}\n"
      "model: {depth: 18, norm: gn, gn_groups: 16, trainable_layers: 5, fpn_channels: 128,\n"
      "        p6_from: c5, head_convs: 2, head_channels: 128, head_group_norm: true,\n"
      "        head_gn_groups: 8, prior: 0.02, weights: data/weights.pt,\n"
      "        weights_allow_missing: false,\n"
      "        anchors: {base_sizes: [16, 32, 64, 128, 256], octave_scales: [1, 1.5],\n"
      "                  aspect_ratios: [1], grid: torchvision}}\n"
      "assigner: {kind: atss, pos_iou: 0.6, neg_iou: 0.3, low_quality_matches: false,\n"
      "           atss_top_k: 5, crowd_ioa: 0.5}\n"
      "loss: {cls: ohem, alpha: -1, gamma: 1.5, ohem_neg_pos_ratio: 2, easy_prob: 0.2,\n"
      "       box: giou, smooth_l1_beta: 0.5, box_weight: 2, normalizer: per_image}\n"
      "optimizer: {name: adamw, lr: 0.0003, momentum: 0.8, nesterov: true,\n"
      "            weight_decay: 0.05, beta1: 0.85, beta2: 0.99, eps: 1e-6,\n"
      "            clip_grad_norm: 10}\n"
      "schedule: {kind: step, warmup_iters: 50, warmup_factor: 0.01, steps: [0.5, 0.75],\n"
      "           gamma: 0.2, min_lr_factor: 0.05}\n"
      "train: {batch_size: 4, max_epochs: 12, log_every: 5, eval_every: 100,\n"
      "        checkpoint_every: 50, progress: 'off'}\n"
      "eval: {split: test, batch_size: 2, shorter_side: 600, max_images: 10}\n"
      "inference: {score_thresh: 0.3, topk_per_level: 500, nms_thresh: 0.6,\n"
      "            max_detections: 50, tta: hvflip}\n");
  // Values whose shortest decimal needs 17 digits, and strings YAML would read otherwise.
  c.loss.gamma = 1.0 / 3.0;
  c.optimizer.lr = 0.1 + 0.2;
  c.model.anchors.octave_scales = {1.0, std::pow(2.0, 1.0 / 3.0), std::pow(2.0, 2.0 / 3.0)};
  c.data.hflip_prob = 5e-324;  // the smallest denormal
  c.run.seed = std::numeric_limits<uint64_t>::max();
  c.run.name = "null";
  c.train.progress = "on";
  const std::string text = to_yaml(c);
  const Config back = parse_config(text, "roundtrip.yaml", "");
  expect_same_config(c, back);
  EXPECT_EQ(to_yaml(back), text);  // a fixed point
  EXPECT_EQ(text.find("base:"), std::string::npos);
}

TEST_F(ConfigTest, ToYamlQuotesStringsThatNeedIt) {
  Config c = load(kMinimal);
  c.run.name = "run: \"#1\"\\";
  c.data.val = dir_ / "data/val.json";
  const Config back = parse_config(to_yaml(c), "roundtrip.yaml", "");
  EXPECT_EQ(back.run.name, c.run.name);
  EXPECT_EQ(back.data.val, c.data.val);
}

TEST_F(ConfigTest, ToYamlWritesEveryKeyWithTheMinutesBudget) {
  const Config c =
      load("data: {image_root: data/images, train: data/train.json}\ntrain: {max_minutes: 2.5}\n");
  const std::string text = to_yaml(c);
  EXPECT_NE(text.find("  max_minutes: 2.5\n"), std::string::npos) << text;
  EXPECT_NE(text.find("  max_iters: 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("model:\n"), std::string::npos) << text;
  EXPECT_NE(text.find("  anchors:\n    base_sizes: [32, 64, 128, 256, 512]\n"), std::string::npos)
      << text;
  expect_same_config(c, parse_config(text, "roundtrip.yaml", ""));
}

TEST_F(ConfigTest, WhereGivesFileLineOrSetOrDefault) {
  const Config c = load(std::string(kMinimal) + "loss:\n  gamma: 3\n", {"loss.alpha=0.5"});
  EXPECT_EQ(where(c, "loss.gamma"), dir_ / "x.yaml:7");
  EXPECT_EQ(where(c, "data.train"), dir_ / "x.yaml:3");
  EXPECT_EQ(where(c, "loss.alpha"), "--set loss.alpha=0.5");
  EXPECT_EQ(where(c, "data.num_classes"), "'data.num_classes' (default)");
}

TEST(ConfigLoad, MissingFileIsAnError) {
  try {
    load_config("tests/config/fixtures/nope.yaml");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "tests/config/fixtures/nope.yaml: no such config file");
  }
}

TEST_F(ConfigTest, EmptyFileGivesDefaultsThenFailsValidation) {
  const std::string message = error_of("");
  EXPECT_NE(message.find("x.yaml: data.train: not set"), std::string::npos) << message;
}

}  // namespace
}  // namespace focaldet::config::test
