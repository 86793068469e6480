// The trainer's small parts, against hand-computed values: the LR schedule, the log window's
// means and shares, the repair of a run's jsonl files on resume, and checkpoints of older runs.
#include <gtest/gtest.h>
#include <torch/nn/modules/linear.h>
#include <torch/serialize/output-archive.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/error.h"
#include "support/temp_dir.h"
#include "train/checkpoint.h"
#include "train/lr_schedule.h"
#include "train/metrics_log.h"

namespace fs = std::filesystem;
using namespace focaldet::train;

TEST(LrSchedule, WarmupIsLinearFromTheFactor) {
  ScheduleOptions o;
  o.kind = ScheduleKind::Constant;
  o.base_lr = 0.1;
  o.warmup_iters = 10;
  o.warmup_factor = 0.01;
  EXPECT_DOUBLE_EQ(learning_rate(o, 0, 0.0), 0.1 * 0.01);
  EXPECT_DOUBLE_EQ(learning_rate(o, 5, 0.0), 0.1 * (0.01 * 0.5 + 0.5));
  EXPECT_DOUBLE_EQ(learning_rate(o, 10, 0.0), 0.1);
}

TEST(LrSchedule, CosineGoesFromBaseToFloor) {
  ScheduleOptions o;
  o.base_lr = 1.0;
  o.warmup_iters = 0;
  o.min_lr_factor = 0.1;
  EXPECT_DOUBLE_EQ(learning_rate(o, 100, 0.0), 1.0);
  EXPECT_NEAR(learning_rate(o, 100, 0.5), 0.1 + 0.9 * 0.5, 1e-15);
  EXPECT_NEAR(learning_rate(o, 100, 1.0), 0.1, 1e-15);
  EXPECT_NEAR(learning_rate(o, 100, 2.0), 0.1, 1e-15);  // progress is clamped
}

TEST(LrSchedule, StepMultipliesByGammaAtEachStep) {
  ScheduleOptions o;
  o.kind = ScheduleKind::Step;
  o.base_lr = 1.0;
  o.warmup_iters = 0;
  o.steps = {0.5, 0.75};
  o.gamma = 0.1;
  EXPECT_DOUBLE_EQ(learning_rate(o, 1, 0.49), 1.0);
  EXPECT_DOUBLE_EQ(learning_rate(o, 1, 0.5), 0.1);
  EXPECT_NEAR(learning_rate(o, 1, 0.8), 0.01, 1e-15);
}

TEST(LogWindow, MeansAndSharesOverTheWindow) {
  LogWindow w;
  StepStats a;
  a.loss = 3;
  a.loss_cls = 2;
  a.loss_box = 1;
  a.breakdown.loss_pos = 1;
  a.breakdown.loss_neg_hard = 0.5;
  a.breakdown.loss_neg_easy = 0.5;
  a.breakdown.num_pos = 10;
  a.images = 2;
  a.step_seconds = 1;
  StepStats b = a;
  b.loss = 1;
  b.loss_cls = 1;
  b.loss_box = 0;
  b.breakdown.loss_pos = 0.5;
  b.breakdown.loss_neg_hard = 0.5;
  b.breakdown.loss_neg_easy = 0;
  b.breakdown.num_pos = 20;
  b.step_seconds = 3;
  w.add(a);
  w.add(b);
  const LogSummary s = w.summary(7, 1, 0.5, 9.0);
  EXPECT_EQ(s.iter, 7);
  EXPECT_DOUBLE_EQ(s.loss, 2.0);
  EXPECT_DOUBLE_EQ(s.loss_cls, 1.5);
  EXPECT_DOUBLE_EQ(s.num_pos, 15.0);
  EXPECT_DOUBLE_EQ(s.loss_cls_neg_easy, 0.25);
  EXPECT_DOUBLE_EQ(s.easy_neg_share, 0.5 / 3.0);        // of the window's cls loss
  EXPECT_DOUBLE_EQ(s.easy_neg_share_total, 0.5 / 4.0);  // of its total loss
  EXPECT_DOUBLE_EQ(s.img_per_s, 4.0 / 4.0);
  w.clear();
  EXPECT_EQ(w.steps(), 0);
}

TEST(MetricsLog, JsonReadsBackExactly) {
  LogSummary s;
  s.iter = 3;
  s.loss = 0.1 + 0.2;  // not representable in short decimal
  const std::string line = to_json(s);
  EXPECT_NE(line.find("\"iter\":3"), std::string::npos);
  EXPECT_NE(line.find("0.30000000000000004"), std::string::npos) << line;
}

TEST(MetricsLog, TruncateKeepsCompleteLinesUpToTheIteration) {
  const fs::path dir = fs::temp_directory_path() / ("focaldet_log_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "metrics.jsonl").string();
  {
    std::ofstream out(path);
    out << "{\"iter\":2,\"loss\":1}\n{\"iter\":4,\"loss\":2}\n{\"iter\":6,\"loss\":3}\n{\"iter\":8,\"lo";
  }
  truncate_jsonl(path, 4);
  std::ifstream in(path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "{\"iter\":2,\"loss\":1}\n{\"iter\":4,\"loss\":2}\n");
  append_line(path, "{\"iter\":6}");
  std::ifstream again(path);
  const std::string text2((std::istreambuf_iterator<char>(again)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text2, text + "{\"iter\":6}\n");
  fs::remove_all(dir);
}

// Runs trained before checkpoints held the log window and the last evaluated iteration (commit
// 328b3bc) still load: for `focaldet eval`, `analyze-loss` and resuming.
TEST(Checkpoint, LoadsOneWrittenBeforeTheLogWindowAndEvaluatedIteration) {
  focaldet::test::TempDir tmp;
  torch::nn::Linear saved(2, 3);
  torch::serialize::OutputArchive archive, model_archive;
  saved->save(model_archive);
  archive.write("model", model_archive);
  archive.write("iteration", torch::tensor(int64_t{40}));
  archive.write("epoch", torch::tensor(int64_t{1}));
  archive.write("batch_in_epoch", torch::tensor(int64_t{5}));
  archive.write("elapsed_seconds", torch::tensor(12.5, torch::kFloat64));
  archive.write("normalizer", torch::tensor(100.0, torch::kFloat64));
  archive.write("best_ap", torch::tensor(0.25, torch::kFloat64));
  archive.write("best_iteration", torch::tensor(int64_t{30}));
  archive.write("rng", at::detail::getDefaultCPUGenerator().get_state());
  const std::string path = tmp / "old.pt";
  archive.save_to(path);

  torch::nn::Linear loaded(2, 3);
  const TrainState s = load_checkpoint(path, *loaded, nullptr);
  EXPECT_EQ(s.iteration, 40);
  EXPECT_EQ(s.best_iteration, 30);
  EXPECT_EQ(s.evaluated_iteration, -1);
  EXPECT_TRUE(s.log_window.empty());
  EXPECT_TRUE(torch::equal(loaded->weight, saved->weight));
  // A key that was always there is still required.
  torch::serialize::OutputArchive no_iteration;
  no_iteration.write("model", model_archive);
  no_iteration.save_to(tmp / "broken.pt");
  EXPECT_THROW(load_checkpoint(tmp / "broken.pt", *loaded, nullptr), focaldet::Error);
}

// A checkpoint of another architecture is refused, naming the tensor and both shapes, instead of
// loading its shapes into the model (Module::load would).
TEST(Checkpoint, RefusesTensorsOfAnotherShape) {
  focaldet::test::TempDir tmp;
  torch::nn::Linear saved(2, 3);
  save_checkpoint(tmp / "a.pt", *saved, nullptr, TrainState{});
  torch::nn::Linear other(2, 4);
  try {
    load_checkpoint(tmp / "a.pt", *other, nullptr);
    FAIL() << "expected an Error";
  } catch (const focaldet::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("'weight' has shape [3, 2] in the checkpoint but [4, 2]"),
              std::string::npos)
        << what;
  }
  torch::nn::Linear same(2, 3);
  EXPECT_NO_THROW(load_checkpoint(tmp / "a.pt", *same, nullptr));
  EXPECT_TRUE(torch::equal(same->weight, saved->weight));
}

// A checkpoint with one bit flipped in a record is refused, naming the record, before LibTorch
// interprets it. LibTorch 1.13 does not check the zip's CRC-32s: it loaded such a weight as a
// silently wrong value, and crashed (SEGV) on some corrupt code records (fuzz_checkpoint,
// docs/reliability.md).
TEST(Checkpoint, RefusesARecordThatFailsItsCrc) {
  focaldet::test::TempDir tmp;
  torch::nn::Linear saved(2, 3);
  save_checkpoint(tmp / "a.pt", *saved, nullptr, TrainState{});
  std::ifstream in(tmp / "a.pt", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Tensor records are stored uncompressed: the weight's 6 floats are in the file as they are.
  const torch::Tensor weight = saved->weight.detach().contiguous();
  const std::string floats(static_cast<const char*>(weight.data_ptr()), 6 * sizeof(float));
  const std::size_t at = bytes.find(floats);
  ASSERT_NE(at, std::string::npos);
  bytes[at + 5] = static_cast<char>(bytes[at + 5] ^ 0x10);
  const std::string corrupt = tmp.write("corrupt.pt", bytes);
  torch::nn::Linear loaded(2, 3);
  try {
    load_checkpoint(corrupt, *loaded, nullptr);
    FAIL() << "expected an Error";
  } catch (const focaldet::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(corrupt + ": not a usable focaldet checkpoint"), std::string::npos) << what;
    EXPECT_NE(what.find("fails its CRC-32 check"), std::string::npos) << what;
  }
  EXPECT_NO_THROW(load_checkpoint(tmp / "a.pt", *loaded, nullptr));
}

// A record renamed in the zip directory (names are not under the CRCs) is refused naming the file:
// renamed in the directory alone, by the name check; renamed everywhere, LibTorch's TorchScript
// importer throws its own exception type (not c10::Error), which used to escape as an internal
// error without the file's name (fuzz_checkpoint, docs/reliability.md).
TEST(Checkpoint, RefusesARenamedRecordNamingTheFile) {
  focaldet::test::TempDir tmp;
  torch::nn::Linear saved(2, 3);
  save_checkpoint(tmp / "a.pt", *saved, nullptr, TrainState{});
  std::ifstream in(tmp / "a.pt", std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The Linear's TorchScript class: named in its local header and in the zip directory (after
  // the local headers), and as the prefix of its .debug_pkl record's name.
  const std::string name = "archive/code/__torch__/___torch_mangle_0.py";
  const std::string renamed = "archive/code/__torch__/___torch_mangle_9.py";
  ASSERT_NE(bytes.find(name), std::string::npos);
  std::string in_directory = bytes;
  in_directory.replace(in_directory.rfind(name), name.size(), renamed);
  std::string everywhere = bytes;
  for (std::size_t at = everywhere.find(name); at != std::string::npos;
       at = everywhere.find(name, at + 1)) {
    everywhere.replace(at, name.size(), renamed);
  }
  for (const auto& [file, text] : {std::pair<std::string, std::string>{"dir.pt", in_directory},
                                   std::pair<std::string, std::string>{"all.pt", everywhere}}) {
    const std::string path = tmp.write(file, text);
    torch::nn::Linear loaded(2, 3);
    try {
      load_checkpoint(path, *loaded, nullptr);
      ADD_FAILURE() << file << ": expected an Error";
    } catch (const focaldet::Error& e) {
      EXPECT_NE(std::string(e.what()).find(path + ": not a usable focaldet checkpoint"),
                std::string::npos)
          << e.what();
    }
  }
}
