// `focaldet train` end to end on configs/smoke.yaml: the run directory, the loss logger's
// breakdown for every loss type, resuming after SIGKILL at several moments (one of them in the
// middle of writing a checkpoint) with the same losses step for step, SIGTERM, and bad input.
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "config/config_io.h"
#include "data/run_focaldet.h"
#include "train/checkpoint.h"
#include "train/detector.h"
#include "train/from_config.h"
#include "train/train_run_util.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using focaldet::test::run_focaldet;
using focaldet::test::TempDir;

using namespace focaldet::test;  // train_run_util.h

TEST(TrainRun, WritesTheRunDirectory) {
  TempDir tmp;
  const std::string run = tmp.str() + "/run";
  std::string out;
  ASSERT_EQ(run_focaldet("train configs/smoke.yaml --run-dir " + run, &out), 0) << out;
  for (const char* f : {"config.yaml", "metrics.jsonl", "eval.jsonl", "train.log",
                        "checkpoints/last.pt", "checkpoints/best.pt", "detections_val.json"}) {
    EXPECT_TRUE(fs::exists(run + "/" + f)) << f;
  }
  const auto metrics = read_jsonl(run + "/metrics.jsonl");
  ASSERT_EQ(metrics.size(), 6u);  // 12 iterations, a line every 2
  for (const char* key : {"iter", "epoch", "lr", "loss", "loss_cls", "loss_box", "num_pos",
                          "num_neg_easy", "num_neg_hard", "loss_cls_pos", "loss_cls_neg_hard",
                          "loss_cls_neg_easy", "easy_neg_share", "easy_neg_share_total",
                          "img_per_s", "data_time", "peak_mem_mb"}) {
    EXPECT_TRUE(metrics[0].contains(key)) << key;
  }
  const auto evals = read_jsonl(run + "/eval.jsonl");
  ASSERT_EQ(evals.size(), 1u);
  EXPECT_EQ(evals[0]["iter"], 12);
  EXPECT_TRUE(evals[0]["AP_per_class"].contains("WBC"));
  // The written config reads back: training from it again works (paths are absolute).
  out.clear();
  EXPECT_EQ(run_focaldet("train " + run + "/config.yaml --run-dir " + tmp.str() +
                             "/again --set train.max_iters=2 --set data.val=",
                         &out),
            0)
      << out;
  EXPECT_FALSE(has_temp_files(run));
}

// run.device: cpu spelled out is the default: the same run, step for step (the device path
// adds nothing on the CPU: no copy of the model or of a batch).
TEST(TrainRun, DeviceCpuIsTheDefaultRunStepForStep) {
  TempDir tmp;
  std::string out;
  ASSERT_EQ(run_focaldet(train_args(tmp.str() + "/default", "--set train.max_iters=6"), &out), 0)
      << out;
  ASSERT_EQ(run_focaldet(train_args(tmp.str() + "/cpu",
                                    "--set train.max_iters=6 --set "
                                    "run.device=cpu"),
                         &out),
            0)
      << out;
  const auto want = read_jsonl(tmp.str() + "/default/metrics.jsonl");
  ASSERT_EQ(want.size(), 3u);
  expect_same_losses(read_jsonl(tmp.str() + "/cpu/metrics.jsonl"), want);
  std::ifstream config(tmp.str() + "/cpu/config.yaml");
  const std::string text((std::istreambuf_iterator<char>(config)),
                         std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("device: cpu"), std::string::npos);
}

// run.device: cuda where no GPU is visible (Debian's CPU-only LibTorch): exit 2 with the key's
// file:line, before the run directory exists; eval and predict check the same way.
TEST(TrainRun, CudaWithoutAGpuExitsTwoNamingTheLineBeforeTheRunDir) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "a CUDA device is visible here";
  TempDir tmp;
  const std::string path = tmp.str() + "/gpu.yaml";
  std::ofstream(path) << "base: " << fs::absolute("configs/smoke.yaml").string()
                      << "\nrun:\n  device: cuda\n";
  const std::string run = tmp.str() + "/run";
  std::string out;
  EXPECT_EQ(run_focaldet("train " + path + " --run-dir " + run, &out), 2) << out;
  EXPECT_NE(out.find("gpu.yaml:3: run.device: cuda: CUDA cannot be used: this process sees no "
                     "CUDA device"),
            std::string::npos)
      << out;
  EXPECT_FALSE(fs::exists(run));
  out.clear();
  EXPECT_EQ(run_focaldet("train configs/smoke.yaml --set run.device=cuda:0 --run-dir " + run, &out),
            2)
      << out;
  EXPECT_NE(out.find("--set run.device=cuda:0: run.device: cuda:0: CUDA cannot be used"),
            std::string::npos)
      << out;
  EXPECT_FALSE(fs::exists(run));
  // Before the checkpoint is read: a missing one is not what is reported.
  for (const std::string command :
       {"eval " + path + " --checkpoint " + tmp.str() + "/none.pt",
        "predict " + path + " --checkpoint " + tmp.str() + "/none.pt data/bccd/JPEGImages --out " +
            tmp.str() + "/preds"}) {
    out.clear();
    EXPECT_EQ(run_focaldet(command, &out), 2) << command << ": " << out;
    EXPECT_NE(out.find("gpu.yaml:3: run.device: cuda: CUDA cannot be used"), std::string::npos)
        << command << ": " << out;
  }
  EXPECT_FALSE(fs::exists(tmp.str() + "/preds"));
}

// Acceptance: in every metrics.jsonl line the breakdown parts sum to loss_cls, for each loss.
TEST(TrainRun, BreakdownSumsToClassificationLossForEveryLoss) {
  TempDir tmp;
  for (const std::string cls : {"focal", "ce", "alpha_ce", "ohem", "softmax_focal"}) {
    const std::string run = tmp.str() + "/" + cls;
    std::string out;
    ASSERT_EQ(run_focaldet(train_args(run, "--set loss.cls=" + cls + " --set train.max_iters=6"),
                           &out),
              0)
        << cls << ": " << out;
    const auto lines = read_jsonl(run + "/metrics.jsonl");
    ASSERT_EQ(lines.size(), 3u) << cls;
    for (const auto& j : lines) {
      const double parts = j["loss_cls_pos"].get<double>() + j["loss_cls_neg_hard"].get<double>() +
                           j["loss_cls_neg_easy"].get<double>();
      const double cls_loss = j["loss_cls"].get<double>();
      // The parts are summed in double by the kernel, the loss in float: relative 1e-5.
      EXPECT_NEAR(parts, cls_loss, 1e-5 * std::max(1.0, cls_loss)) << cls << " iter " << j["iter"];
      EXPECT_GT(cls_loss, 0.0) << cls;
      EXPECT_NEAR(j["loss"].get<double>(),
                  j["loss_cls"].get<double>() + j["loss_box"].get<double>(), 1e-9);
      const double share = j["easy_neg_share"].get<double>();
      EXPECT_GE(share, 0.0);
      EXPECT_LE(share, 1.0);
      EXPECT_NEAR(share * cls_loss, j["loss_cls_neg_easy"].get<double>(), 1e-5 * cls_loss);
    }
  }
}

// Acceptance: killed with SIGKILL at several moments (one in the middle of writing a
// checkpoint) and resumed, the run logs the same losses, step for step, as an uninterrupted one.
TEST(TrainRun, ResumeAfterSigkillGivesTheSameLosses) {
  TempDir tmp;
  const std::string reference = tmp.str() + "/reference";
  std::string out;
  ASSERT_EQ(run_focaldet(train_args(reference), &out), 0) << out;
  const auto want = read_jsonl(reference + "/metrics.jsonl");
  ASSERT_EQ(want.size(), 6u);

  const std::string run = tmp.str() + "/killed";
  // 1: killed after the 3rd log line (iteration 6; the iteration-4 checkpoint is written).
  kill_after_lines(spawn(split_args(train_args(run))), run + "/metrics.jsonl", 3);
  ASSERT_TRUE(fs::exists(run + "/checkpoints/last.pt"));
  // 2: resumed at 4, then killed in the middle of writing the iteration-8 checkpoint, its
  // first write of last.pt (the fault hook raises SIGKILL after half of the file is written).
  {
    const pid_t pid = spawn(split_args("train --resume " + run),
                            "FOCALDET_FAULT_KILL_IN_WRITE=last.pt@1");
    const int status = wait_status(pid);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  }
  // The kill left its half-written temp file; it never replaced the last complete checkpoint,
  // which the next resume loads (and the stale temp file is removed then).
  EXPECT_TRUE(has_temp_files(run));
  // 3: resumed, killed again early.
  kill_after_lines(spawn(split_args("train --resume " + run)), run + "/metrics.jsonl", 5);
  // 4: resumed to the end.
  out.clear();
  ASSERT_EQ(run_focaldet("train --resume " + run, &out), 0) << out;
  expect_same_losses(read_jsonl(run + "/metrics.jsonl"), want);
  EXPECT_FALSE(has_temp_files(run));
}

TEST(TrainRun, SigtermSavesACheckpointAndExits130) {
  TempDir tmp;
  const std::string run = tmp.str() + "/run";
  const pid_t pid = spawn(split_args(train_args(run, "--set train.max_iters=100000")));
  for (int i = 0; i < 6000 && !fs::exists(run + "/metrics.jsonl"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::kill(pid, SIGTERM);
  const int status = wait_status(pid);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 130);
  EXPECT_TRUE(fs::exists(run + "/checkpoints/last.pt"));
  std::ifstream log(run + "/train.log");
  const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  const std::regex stopped("stopped by signal 15 at iteration ([0-9]+)");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(text, m, stopped)) << text;
  const int stopped_at = std::stoi(m[1]);
  // The resume starts where the signal stopped the run and goes on to the new budget.
  std::string out;
  EXPECT_EQ(run_focaldet("train --resume " + run + " --set train.max_iters=" +
                             std::to_string(stopped_at + 2),
                         &out),
            0)
      << out;
  EXPECT_NE(out.find("resuming " + run + " at iteration " + std::to_string(stopped_at)),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("done: " + std::to_string(stopped_at + 2) + " iterations"), std::string::npos)
      << out;
}

TEST(TrainRun, NonFiniteLossStopsNamingTheIteration) {
  TempDir tmp;
  std::string out;
  const std::string run = tmp.str() + "/run";
  // A huge learning rate with no clipping: the weights blow up within a few steps.
  const int rc = run_focaldet(
      train_args(run, "--set optimizer.lr=1e30 --set optimizer.clip_grad_norm=0"), &out);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_TRUE(std::regex_search(out, std::regex("iteration [0-9]+: the loss is not finite \\((classification|box) loss = ")))
      << out;
  // The last good checkpoint is still there and loads.
  out.clear();
  EXPECT_EQ(run_focaldet("eval configs/smoke.yaml --checkpoint " + run +
                             "/checkpoints/last.pt --split val --out " + tmp.str() + "/ev",
                         &out),
            0)
      << out;
}

TEST(TrainRun, ExistingRunIsNotOverwrittenSilently) {
  TempDir tmp;
  const std::string run = tmp.str() + "/run";
  std::string out;
  ASSERT_EQ(run_focaldet(train_args(run, "--set train.max_iters=2"), &out), 0) << out;
  out.clear();
  EXPECT_EQ(run_focaldet(train_args(run, "--set train.max_iters=2"), &out), 2);
  EXPECT_NE(out.find("--resume"), std::string::npos) << out;
  out.clear();
  EXPECT_EQ(run_focaldet(train_args(run, "--set train.max_iters=2 --overwrite"), &out), 0) << out;
}

TEST(TrainRun, CorruptCheckpointIsNamedOnResume) {
  TempDir tmp;
  const std::string run = tmp.str() + "/run";
  std::string out;
  ASSERT_EQ(run_focaldet(train_args(run, "--set train.max_iters=2"), &out), 0) << out;
  std::ofstream(run + "/checkpoints/last.pt", std::ios::trunc) << "not a checkpoint";
  out.clear();
  EXPECT_EQ(run_focaldet("train --resume " + run, &out), 2);
  EXPECT_NE(out.find("last.pt"), std::string::npos) << out;
}

// train.ema_decay: the average goes on across a kill and a resume as if nothing happened
// (a resume that restarted it from the model would end elsewhere), it is not the trained
// model, and `focaldet eval` takes it.
TEST(TrainRun, ModelEmaResumesExactlyAndEvalUsesIt) {
  TempDir tmp;
  const std::string ema = "--set train.ema_decay=0.9 --set train.max_iters=8";
  const std::string reference = tmp.str() + "/reference", run = tmp.str() + "/killed";
  std::string out;
  ASSERT_EQ(run_focaldet(train_args(reference, ema), &out), 0) << out;
  EXPECT_NE(out.find("model EMA: decay 0.9"), std::string::npos) << out;
  // Killed after the 3rd log line (iteration 6; the iteration-4 checkpoint holds the average).
  kill_after_lines(spawn(split_args(train_args(run, ema))), run + "/metrics.jsonl", 3);
  out.clear();
  ASSERT_EQ(run_focaldet("train --resume " + run, &out), 0) << out;

  const auto c = focaldet::config::load_config("configs/smoke.yaml");
  const auto load = [&c](const std::string& dir) {
    std::pair<std::unique_ptr<focaldet::train::Detector>, std::unique_ptr<focaldet::train::Detector>>
        m{focaldet::train::make_detector(c, 3, false), focaldet::train::make_detector(c, 3, false)};
    EXPECT_TRUE(focaldet::train::load_checkpoint(dir + "/checkpoints/last.pt", *m.first->model(),
                                                 nullptr, m.second->model().get())
                    .averaged);
    return m;
  };
  const auto want = load(reference), got = load(run);
  const auto want_avg = want.second->model()->named_parameters();
  const auto got_avg = got.second->model()->named_parameters();
  const auto trained = want.first->model()->named_parameters();
  ASSERT_EQ(want_avg.size(), got_avg.size());
  int differ_from_trained = 0;
  for (const auto& p : want_avg) {
    EXPECT_TRUE(torch::equal(p.value(), got_avg[p.key()])) << p.key();
    differ_from_trained += !torch::equal(p.value(), trained[p.key()]);
  }
  EXPECT_GT(differ_from_trained, 0);

  out.clear();
  ASSERT_EQ(run_focaldet("eval configs/smoke.yaml --checkpoint " + run +
                             "/checkpoints/last.pt --split test --set eval.max_images=2",
                         &out),
            0)
      << out;
  EXPECT_NE(out.find("(iteration 8, model EMA weights)"), std::string::npos) << out;
}

TEST(TrainRun, EvalAndPredictFromACheckpoint) {
  TempDir tmp;
  const std::string run = tmp.str() + "/run";
  std::string out;
  ASSERT_EQ(run_focaldet(train_args(run, "--set train.max_iters=2"), &out), 0) << out;
  out.clear();
  ASSERT_EQ(run_focaldet("eval configs/smoke.yaml --checkpoint " + run +
                             "/checkpoints/last.pt --split test",
                         &out),
            0)
      << out;
  EXPECT_NE(out.find("Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]"),
            std::string::npos)
      << out;
  EXPECT_TRUE(fs::exists(run + "/detections_test.json"));
  EXPECT_TRUE(fs::exists(run + "/metrics_test.json"));
  out.clear();
  // With test-time flips: the log says so, and the metrics are written.
  ASSERT_EQ(run_focaldet("eval configs/smoke.yaml --checkpoint " + run +
                             "/checkpoints/last.pt --split test --set eval.max_images=2"
                             " --set inference.tta=hvflip --out " + tmp.str() + "/tta",
                         &out),
            0)
      << out;
  EXPECT_NE(out.find("(iteration 2, test-time flips hvflip)"), std::string::npos) << out;
  EXPECT_TRUE(fs::exists(tmp.str() + "/tta/metrics_test.json"));
  out.clear();
  ASSERT_EQ(run_focaldet("predict configs/smoke.yaml --checkpoint " + run +
                             "/checkpoints/last.pt data/bccd/JPEGImages/BloodImage_00000.jpg --out " +
                             tmp.str() + "/pred",
                         &out),
            0)
      << out;
  EXPECT_TRUE(fs::exists(tmp.str() + "/pred/BloodImage_00000.jpg"));
  EXPECT_TRUE(fs::exists(tmp.str() + "/pred/detections.json"));
  out.clear();
  EXPECT_EQ(run_focaldet("predict configs/smoke.yaml --checkpoint " + run +
                             "/checkpoints/last.pt " + tmp.str() + "/no_such.jpg --out " +
                             tmp.str() + "/pred",
                         &out),
            2);
  EXPECT_NE(out.find("no_such.jpg"), std::string::npos) << out;
}

// Acceptance: malformed configs each give their own message with file:line, and exit 2, from
// the command line (the config library's own table is in tests/config).
TEST(TrainRun, MalformedConfigsExitTwoNamingFileAndLine) {
  TempDir tmp;
  const std::string base = fs::absolute("configs/smoke.yaml").string();
  struct Case {
    std::string body;  // after the "base:" line (line 1)
    std::string want;  // substring of the message, after "bad.yaml:"
  };
  const std::vector<Case> cases = {
      {"loss:\n  gama: 2\n", "3: unknown key 'gama'"},
      {"los:\n  gamma: 2\n", "2: unknown"},
      {"loss:\n  gamma: abc\n", "3:"},
      {"optimizer:\n  lr: -0.1\n", "3:"},
      {"loss:\n  gamma: -1\n", "3:"},
      {"loss:\n  alpha: 1.5\n", "3:"},
      {"data:\n  train: no_such.json\n", "3:"},
      {"data:\n  image_root: no_such_folder\n", "3:"},
      {"data:\n  num_classes: 5\n", "3:"},
      {"train:\n  max_iters: 5\n  max_epochs: 2\n", ""},
      {"optimizer:\n  name: adam\n", "3:"},
      {"loss: [unclosed\n", ""},  // yaml-cpp places the error where it gave up
      {"model:\n  depth: 101\n", "3:"},
      {"schedule:\n  kind: linear\n", "3:"},
  };
  std::set<std::string> messages;
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string path = tmp.str() + "/bad.yaml";
    std::ofstream(path, std::ios::trunc) << "base: " << base << "\n" << cases[i].body;
    std::string out;
    EXPECT_EQ(run_focaldet("train " + path + " --run-dir " + tmp.str() + "/run", &out), 2)
        << "case " << i << ": " << out;
    EXPECT_NE(out.find("bad.yaml:" + cases[i].want), std::string::npos)
        << "case " << i << " wants bad.yaml:" << cases[i].want << ", got: " << out;
    EXPECT_TRUE(std::regex_search(out, std::regex("bad\\.yaml:[0-9]+"))) << "case " << i << ": " << out;
    const auto at = out.find("bad.yaml");
    messages.insert(at == std::string::npos ? out : out.substr(at));
    EXPECT_FALSE(fs::exists(tmp.str() + "/run/checkpoints")) << "case " << i;
  }
  EXPECT_EQ(messages.size(), cases.size());  // each its own message
  std::string out;
  EXPECT_EQ(run_focaldet("train configs/smoke.yaml --set loss.gama=1 --run-dir " + tmp.str() +
                             "/run",
                         &out),
            2);
  EXPECT_NE(out.find("did you mean 'gamma'"), std::string::npos) << out;
}
