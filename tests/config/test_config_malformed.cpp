// Malformed configs, one row each: every one must raise focaldet::Error naming the file and the
// line (or the --set) and what is wrong. Each config is x.yaml in a fresh temp folder holding a
// stub dataset; line numbers are counted by hand from the text.
#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "config/config_io.h"
#include "config_test_util.h"

namespace focaldet::config::test {
namespace {

struct Case {
  const char* name;
  std::string yaml;                                        // x.yaml
  std::vector<std::string> overrides;                      // --set
  std::vector<std::pair<std::string, std::string>> extra;  // other files: name, text
  std::string message;  // must appear in what(); "X/" stands for the temp folder
};

const std::string kM = kMinimal;  // lines 1-5

std::vector<Case> cases() {
  return {
      // Keys and sections.
      {"UnknownKeySuggestsNearest",
       kM + "loss:\n  alpha: 0.25\n  gama: 2\n",
       {},
       {},
       "X/x.yaml:8: unknown key 'gama' in 'loss' (did you mean 'gamma'?)"},
      {"UnknownSection",
       kM + "los:\n  gamma: 2\n",
       {},
       {},
       "X/x.yaml:6: unknown section 'los' (did you mean 'loss'?)"},
      {"UnknownKeyFarFromAllListsThem",
       kM + "loss:\n  zzzzzzzzzz: 1\n",
       {},
       {},
       "X/x.yaml:7: unknown key 'zzzzzzzzzz' in 'loss' (valid: cls, alpha, gamma,"},
      {"UnknownNestedKey",
       kM + "model:\n  anchors:\n    base_size: [16]\n",
       {},
       {},
       "X/x.yaml:8: unknown key 'base_size' in 'model.anchors' (did you mean 'base_sizes'?)"},
      {"DuplicateKey",
       kM + "loss:\n  gamma: 1\n  gamma: 2\n",
       {},
       {},
       "X/x.yaml:8: duplicate key 'loss.gamma' (first at line 7)"},
      {"SectionNotAMap",
       kM + "loss: focal\n",
       {},
       {},
       "X/x.yaml:6: loss: expected a map of keys, got 'focal'"},
      {"TopLevelList",
       "- data\n- train\n",
       {},
       {},
       "X/x.yaml:1: expected a map of sections (run, data, model,"},
      // Types.
      {"WrongType",
       kM + "loss:\n  gamma: abc\n",
       {},
       {},
       "X/x.yaml:7: loss.gamma: expected a number, got 'abc'"},
      {"MapWhereNumber",
       kM + "optimizer:\n  lr: {value: 0.1}\n",
       {},
       {},
       "X/x.yaml:7: optimizer.lr: expected a number, got a map"},
      {"ScalarWhereList",
       "data:\n  image_root: data/images\n  train: data/train.json\n  shorter_sides: 800\n"
       "train:\n  max_iters: 10\n",
       {},
       {},
       "X/x.yaml:4: data.shorter_sides: expected a list, got '800'"},
      {"ListItemWrongTypeNamesItsLine",
       kM + "model:\n  anchors:\n    base_sizes: [16, 32,\n      big]\n",
       {},
       {},
       "X/x.yaml:9: model.anchors.base_sizes[2]: expected a number, got 'big'"},
      {"NonFinite",
       kM + "loss:\n  gamma: .inf\n",
       {},
       {},
       "X/x.yaml:7: loss.gamma: expected a finite number, got '.inf'"},
      {"Overflow",
       kM + "loss:\n  gamma: 1e999\n",
       {},
       {},
       "X/x.yaml:7: loss.gamma: expected a finite number, got '1e999'"},
      {"IntNotInteger",
       kM + "  batch_size: 1.5\n",
       {},
       {},
       "X/x.yaml:6: train.batch_size: expected an integer, got '1.5'"},
      {"IntOutOfRange",
       kM + "eval:\n  max_images: 3000000000\n",
       {},
       {},
       "X/x.yaml:7: eval.max_images: expected an integer in [-2147483648, 2147483647], got "
       "'3000000000'"},
      {"NegativeSeed",
       kM + "run:\n  seed: -1\n",
       {},
       {},
       "X/x.yaml:7: run.seed: expected a non-negative integer, got '-1'"},
      {"BoolNotTrueFalse",
       kM + "model:\n  head_group_norm: yes\n",
       {},
       {},
       "X/x.yaml:7: model.head_group_norm: expected true or false, got 'yes'"},
      // Ranges (validate()).
      {"NegativeLr",
       kM + "optimizer:\n  lr: -0.01\n",
       {},
       {},
       "X/x.yaml:7: optimizer.lr: must be > 0, got -0.01"},
      {"ZeroLr",
       kM + "optimizer:\n  name: adamw\n  lr: 0\n",
       {},
       {},
       "X/x.yaml:8: optimizer.lr: must be > 0, got 0"},
      {"GammaNegative",
       kM + "loss:\n  gamma: -1\n",
       {},
       {},
       "X/x.yaml:7: loss.gamma: must be >= 0, got -1"},
      {"AlphaAboveOne",
       kM + "loss:\n  alpha: 1.5\n",
       {},
       {},
       "X/x.yaml:7: loss.alpha: must be in [0, 1], or -1 for no balancing, got 1.5"},
      {"AlphaNegativeNotMinusOne",
       kM + "loss:\n  alpha: -0.5\n",
       {},
       {},
       "X/x.yaml:7: loss.alpha: must be in [0, 1], or -1 for no balancing, got -0.5"},
      {"EasyProbOne",
       kM + "loss:\n  easy_prob: 1\n",
       {},
       {},
       "X/x.yaml:7: loss.easy_prob: must be in (0, 1), got 1"},
      {"PosIouBelowNegIou",
       kM + "assigner:\n  pos_iou: 0.3\n  neg_iou: 0.4\n",
       {},
       {},
       "X/x.yaml:7: assigner.pos_iou: must be >= assigner.neg_iou (0.4), got 0.3"},
      {"EmaDecayOne",
       kM + "  ema_decay: 1\n",
       {},
       {},
       "X/x.yaml:6: train.ema_decay: must be in [0, 1), got 1"},
      {"NprocBelowOne",
       kM + "run:\n  nproc: 0\n",
       {},
       {},
       "X/x.yaml:7: run.nproc: must be >= 1, got 0"},
      {"BadDepth",
       kM + "model:\n  depth: 101\n",
       {},
       {},
       "X/x.yaml:7: model.depth: must be 18, 34 or 50, got 101"},
      {"BackboneWidthNotMultipleOf8",
       kM + "model:\n  backbone_width: 20\n",
       {},
       {},
       "X/x.yaml:7: model.backbone_width: must be a positive multiple of 8, got 20"},
      {"GnGroupsDoNotDivideBackboneWidth",
       kM + "model:\n  norm: gn\n  backbone_width: 40\n  gn_groups: 16\n",
       {},
       {},
       "X/x.yaml:9: model.gn_groups: must divide model.backbone_width (40, the smallest ResNet "
       "channel count), got 16"},
      {"BadEnum",
       kM + "loss:\n  cls: focall\n",
       {},
       {},
       "X/x.yaml:7: loss.cls: must be one of focal, ce, alpha_ce, ohem, softmax_focal; got "
       "'focall'"},
      {"StepsNotAscending",
       kM + "schedule:\n  kind: step\n  steps: [0.8, 0.5]\n",
       {},
       {},
       "X/x.yaml:8: schedule.steps: must be ascending, got 0.5 after 0.8"},
      {"PadDivisorNotMultipleOf32",
       "data:\n  image_root: data/images\n  train: data/train.json\n  pad_divisor: 100\n"
       "train:\n  max_iters: 10\n",
       {},
       {},
       "X/x.yaml:4: data.pad_divisor: must be a positive multiple of 32, got 100"},
      {"HeadGroupsDoNotDivideChannels",
       kM + "model:\n  head_group_norm: true\n  head_channels: 256\n  head_gn_groups: 48\n",
       {},
       {},
       "X/x.yaml:9: model.head_gn_groups: must divide model.head_channels (256), got 48"},
      {"EmptyAnchorList",
       kM + "model:\n  anchors:\n    aspect_ratios: []\n",
       {},
       {},
       "X/x.yaml:8: model.anchors.aspect_ratios: must not be empty"},
      {"UnknownAnchorGrid",
       kM + "model:\n  anchors:\n    grid: centered\n",
       {},
       {},
       "X/x.yaml:8: model.anchors.grid: must be one of level, torchvision; got 'centered'"},
      {"UnknownTta",
       kM + "inference:\n  tta: rotate\n",
       {},
       {},
       "X/x.yaml:7: inference.tta: must be one of none, hflip, hvflip; got 'rotate'"},
      {"ScoreThreshOne",
       kM + "inference:\n  score_thresh: 1\n",
       {},
       {},
       "X/x.yaml:7: inference.score_thresh: must be in [0, 1), got 1"},
      // Dataset files.
      {"MissingTrainJson",
       "data:\n  image_root: data/images\n  train: data/missing.json\ntrain:\n  max_iters: 10\n",
       {},
       {},
       "X/x.yaml:3: data.train: no such file 'X/data/missing.json'"},
      {"MissingImageFolder",
       "data:\n  image_root: data/imgs\n  train: data/train.json\ntrain:\n  max_iters: 10\n",
       {},
       {},
       "X/x.yaml:2: data.image_root: no such folder 'X/data/imgs'"},
      {"MissingValJson",
       "data:\n  image_root: data/images\n  train: data/train.json\n  val: data/nope.json\n"
       "train:\n  max_iters: 10\n",
       {},
       {},
       "X/x.yaml:4: data.val: no such file 'X/data/nope.json'"},
      // Budgets.
      {"TwoBudgets",
       kM + "  max_epochs: 3\n",
       {},
       {},
       "X/x.yaml:6: train.max_epochs: only one budget may be set, but train.max_iters is set "
       "too (X/x.yaml:5)"},
      {"NoBudgetNamedZero",
       "data:\n  image_root: data/images\n  train: data/train.json\ntrain:\n  max_iters: 0\n",
       {},
       {},
       "X/x.yaml:5: train.max_iters: no training budget: set exactly one of"},
      {"NoBudgetAtAll",
       "data:\n  image_root: data/images\n  train: data/train.json\n",
       {},
       {},
       "X/x.yaml: train: no training budget"},
      // --set.
      {"SetUnknownKey",
       kM,
       {"loss.gama=3"},
       {},
       "--set loss.gama=3: unknown key 'gama' in 'loss' (did you mean 'gamma'?)"},
      {"SetUnknownSection",
       kM,
       {"optimiser.lr=0.1"},
       {},
       "--set optimiser.lr=0.1: unknown section 'optimiser' (did you mean 'optimizer'?)"},
      {"SetWrongType",
       kM,
       {"loss.gamma=abc"},
       {},
       "--set loss.gamma=abc: loss.gamma: expected a number, got 'abc'"},
      {"SetOutOfRange",
       kM,
       {"optimizer.lr=-1"},
       {},
       "--set optimizer.lr=-1: optimizer.lr: must be > 0, got -1"},
      {"SetNegativeBrightness",
       kM,
       {"data.brightness=-0.1"},
       {},
       "--set data.brightness=-0.1: data.brightness: must be >= 0, got -0.1"},
      {"SetWithoutEquals",
       kM,
       {"loss.gamma"},
       {},
       "--set loss.gamma: expected key.path=value (e.g. --set loss.gamma=3)"},
      {"SetEmptyKeyPart",
       kM,
       {"loss..gamma=3"},
       {},
       "--set loss..gamma=3: 'loss..gamma' is not a key path"},
      {"SetBase",
       kM,
       {"base=other.yaml"},
       {},
       "--set base=other.yaml: base can only be set in a config file"},
      // base:
      {"BaseCycle",
       "base: a.yaml\n" + kM,
       {},
       {{"a.yaml", "base: x.yaml\n"}},
       "X/a.yaml:1: base: cycle: X/x.yaml -> X/a.yaml -> X/x.yaml"},
      {"BaseIsItself",
       "base: ./x.yaml\n" + kM,
       {},
       {},
       "X/x.yaml:1: base: cycle: X/x.yaml -> X/x.yaml"},
      {"BaseMissing",
       "base: nope.yaml\n" + kM,
       {},
       {},
       "X/x.yaml:1: base: no such file 'X/nope.yaml'"},
      {"ErrorInBaseNamesTheBase",
       "base: sub/b.yaml\n" + kM,
       {},
       {{"sub/b.yaml", "loss:\n  gamma: 2\n  alhpa: 0.5\n"}},
       "X/sub/b.yaml:3: unknown key 'alhpa' in 'loss' (did you mean 'alpha'?)"},
      {"RangeErrorInBaseNamesTheBase",
       "base: sub/b.yaml\n" + kM,
       {},
       {{"sub/b.yaml", "loss:\n  gamma: -2\n"}},
       "X/sub/b.yaml:2: loss.gamma: must be >= 0"},
      // YAML syntax.
      {"YamlSyntaxError",
       kM + "loss:\n  gamma: 2\n   alpha: 0.5\n",
       {},
       {},
       "X/x.yaml:8: invalid YAML: illegal map value (column 9)"},
      {"YamlUnclosedFlowList",
       kM + "loss:\n  gamma: 2\nmodel:\n  anchors: {base_sizes: [16\n",
       {},
       {},
       "X/x.yaml:10: invalid YAML: end of sequence flow not found"},
      {"YamlTab",
       kM + "\tgamma: 2\n",
       {},
       {},
       "X/x.yaml:6: invalid YAML: illegal tab when looking for indentation"},
  };
}

// gtest prints the row's name rather than its bytes.
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
  return s;
}

class Malformed : public ::testing::TestWithParam<Case> {};

TEST_P(Malformed, RaisesErrorNamingFileLineAndProblem) {
  const Case& c = GetParam();
  TempDir dir;
  write_stub_dataset(dir);
  const std::string path = dir.write("x.yaml", c.yaml);
  for (const auto& [name, text] : c.extra) dir.write(name, text);
  const std::string expected = replace_all(c.message, "X/", dir.path().string() + "/");
  try {
    load_config(path, c.overrides);
    FAIL() << "no error; expected: " << expected;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(expected), std::string::npos)
        << "got:      " << e.what() << "\nexpected: " << expected;
  }
}

INSTANTIATE_TEST_SUITE_P(Config, Malformed, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
}  // namespace focaldet::config::test
