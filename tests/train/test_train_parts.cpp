// The trainer's small parts, against hand-computed values: the LR schedule, the log window's
// means and shares, the model EMA, the repair of a run's jsonl files on resume, checkpoints of
// older runs and their round trip (with and without EMA weights), and the device path (run.device) as far as a machine without a GPU shows it.
#include <gtest/gtest.h>
#include <torch/csrc/autograd/function.h>
#include <torch/cuda.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>
#include <torch/serialize/output-archive.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "common/error.h"
#include "config/config_io.h"
#include "support/temp_dir.h"
#include "train/checkpoint.h"
#include "train/detector.h"
#include "train/device.h"
#include "train/from_config.h"
#include "train/lr_schedule.h"
#include "train/metrics_log.h"
#include "train/model_average.h"
#include "train/optimizer.h"

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

TEST(Threads, DefaultSharesTheCoresAmongTheRanksOnTheMachine) {
  EXPECT_EQ(default_threads(2, 1), 2);
  EXPECT_EQ(default_threads(2, 2), 1);   // focaldet train --nproc 2 on 2 cores
  EXPECT_EQ(default_threads(16, 4), 4);
  EXPECT_EQ(default_threads(7, 2), 3);   // rounds down: never more threads than cores
  EXPECT_EQ(default_threads(2, 4), 1);   // more ranks than cores: still one each
  EXPECT_EQ(default_threads(0, 1), 1);   // hardware_concurrency() may report 0
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

// A checkpoint holds the model's parameters and buffers, its children's, and the optimizer's
// state (written as CPU copies, checkpoint.cpp): loading them into fresh objects gives a model
// and an optimizer whose next step is the same as the originals'. Without the moments (AdamW)
// or the momentum (SGD) the next step would differ; without the buffers, the outputs.
TEST(Checkpoint, RoundTripsParametersBuffersAndOptimizerState) {
  for (const std::string name : {"sgd", "adamw"}) {
    focaldet::test::TempDir tmp;
    const auto make = [](uint64_t seed) {
      torch::manual_seed(seed);
      return torch::nn::Sequential(torch::nn::Linear(3, 4), torch::nn::BatchNorm1d(4),
                                   torch::nn::Linear(4, 2));
    };
    OptimizerOptions o;
    o.name = name;
    o.lr = 0.05;
    torch::nn::Sequential a = make(1);
    auto opt_a = make_optimizer(a->parameters(), o);
    torch::manual_seed(2);
    const torch::Tensor x = torch::randn({8, 3});
    const auto step = [&x](torch::nn::Sequential& m, torch::optim::Optimizer& opt) {
      opt.zero_grad();
      m->forward(x).pow(2).sum().backward();
      opt.step();
    };
    for (int i = 0; i < 3; ++i) step(a, *opt_a);
    TrainState state;
    state.iteration = 3;
    save_checkpoint(tmp / "a.pt", *a, opt_a.get(), state);

    torch::nn::Sequential b = make(7);  // other weights, zero statistics, no optimizer state
    auto opt_b = make_optimizer(b->parameters(), o);
    EXPECT_EQ(load_checkpoint(tmp / "a.pt", *b, opt_b.get()).iteration, 3);
    const auto expect_same = [&](const char* when) {
      const auto pa = a->named_parameters(), pb = b->named_parameters();
      for (const auto& p : pa) {
        EXPECT_TRUE(torch::equal(p.value(), pb[p.key()])) << name << " " << when << " " << p.key();
      }
      const auto ba = a->named_buffers(), bb = b->named_buffers();
      ASSERT_EQ(ba.size(), 3u);  // running_mean, running_var, num_batches_tracked
      for (const auto& t : ba) {
        EXPECT_TRUE(torch::equal(t.value(), bb[t.key()])) << name << " " << when << " " << t.key();
      }
    };
    expect_same("after loading");
    step(a, *opt_a);
    step(b, *opt_b);
    expect_same("after one more step");
  }
}

// --- Model EMA (train/model_average.h) ---

namespace {

torch::nn::Sequential small_net(uint64_t seed) {
  torch::manual_seed(seed);
  return torch::nn::Sequential(torch::nn::Linear(3, 4), torch::nn::BatchNorm1d(4),
                               torch::nn::Linear(4, 2));
}

// Every parameter and buffer of `m`, in state-dict order, copied.
std::vector<torch::Tensor> tensors_of(const torch::nn::Module& m) {
  std::vector<torch::Tensor> out;
  for (const auto& p : m.parameters()) out.push_back(p.detach().clone());
  for (const auto& b : m.buffers()) out.push_back(b.clone());
  return out;
}

void expect_tensors(const torch::nn::Module& m, const std::vector<torch::Tensor>& want,
                    const std::string& what) {
  const std::vector<torch::Tensor> got = tensors_of(m);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_TRUE(torch::equal(got[i], want[i])) << what << ": tensor " << i;
  }
}

}  // namespace

TEST(ModelAverage, DecayWarmsUpAsTensorFlowsAndIsCappedByTheConfig) {
  EXPECT_DOUBLE_EQ(ModelAverage::decay_at(0.999, 0), 1.0 / 10.0);
  EXPECT_DOUBLE_EQ(ModelAverage::decay_at(0.999, 1), 2.0 / 11.0);
  EXPECT_DOUBLE_EQ(ModelAverage::decay_at(0.999, 90), 91.0 / 100.0);
  EXPECT_DOUBLE_EQ(ModelAverage::decay_at(0.99, 10000), 0.99);  // (10001 / 10010) > 0.99
}

TEST(ModelAverage, EachUpdateMixesTheWeightsByTheDecayAndCopiesTheBatchCount) {
  torch::nn::Sequential model = small_net(1), average = small_net(2);
  ModelAverage ema(*model, *average, 0.5, /*start_from_model=*/true);
  expect_tensors(*average, tensors_of(*model), "a new average is the model");
  std::vector<torch::Tensor> want = tensors_of(*average);

  // Two "steps": new weights, and a forward in training mode for new BatchNorm statistics.
  for (int64_t step = 1; step <= 2; ++step) {
    {
      torch::NoGradGuard no_grad;
      for (auto& p : model->parameters()) p.add_(torch::randn_like(p));
    }
    model->train();
    model->forward(torch::randn({6, 3}));
    const std::vector<torch::Tensor> now = tensors_of(*model);
    const double d = ModelAverage::decay_at(0.5, step);  // 2/11, then 0.25 = min(0.5, 3/12)
    for (size_t i = 0; i < want.size(); ++i) {
      // In double, from the copies: d * average + (1 - d) * model; integers copied.
      want[i] = want[i].is_floating_point()
                    ? (d * want[i].to(torch::kFloat64) + (1 - d) * now[i].to(torch::kFloat64))
                          .to(want[i].dtype())
                    : now[i];
    }
    ema.update(step);
    const std::vector<torch::Tensor> got = tensors_of(*average);
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_TRUE(torch::allclose(got[i], want[i], 1e-6, 1e-7)) << "step " << step << " " << i;
      want[i] = got[i];  // the next step's start is what the average holds
    }
    // The batch count (int64) is the model's, not an average.
    EXPECT_EQ(average->named_buffers()["1.num_batches_tracked"].item<int64_t>(), step);
  }
  // The average is not the model: both steps moved the model by a whole random step.
  EXPECT_FALSE(torch::allclose(average->parameters()[0], model->parameters()[0]));
}

TEST(ModelAverage, AResumedAverageKeepsWhatItHolds) {
  torch::nn::Sequential model = small_net(1), average = small_net(2);
  const std::vector<torch::Tensor> held = tensors_of(*average);
  ModelAverage ema(*model, *average, 0.9, /*start_from_model=*/false);
  expect_tensors(*average, held, "a resumed average");
}

TEST(Checkpoint, KeepsTheAveragedWeightsBesideTheTrainedOnes) {
  focaldet::test::TempDir tmp;
  torch::nn::Sequential model = small_net(1), average = small_net(2);
  const auto trained = tensors_of(*model), averaged = tensors_of(*average);
  TrainState state;
  state.iteration = 5;
  save_checkpoint(tmp / "ema.pt", *model, nullptr, state, average.get());
  save_checkpoint(tmp / "plain.pt", *model, nullptr, state);

  // Evaluation and prediction take the average when there is one.
  torch::nn::Sequential m = small_net(3);
  EXPECT_TRUE(load_inference_weights(tmp / "ema.pt", *m).averaged);
  expect_tensors(*m, averaged, "inference weights of an EMA run");
  EXPECT_FALSE(load_inference_weights(tmp / "plain.pt", *m).averaged);
  expect_tensors(*m, trained, "inference weights of a run without EMA");

  // A resume takes the trained weights into the model and the average into its own.
  torch::nn::Sequential r = small_net(4), a = small_net(5);
  const auto untouched = tensors_of(*a);
  EXPECT_TRUE(load_checkpoint(tmp / "ema.pt", *r, nullptr, a.get()).averaged);
  expect_tensors(*r, trained, "resumed model");
  expect_tensors(*a, averaged, "resumed average");
  // A checkpoint without one leaves the average to the caller (it restarts from the model).
  torch::nn::Sequential b = small_net(5);
  EXPECT_FALSE(load_checkpoint(tmp / "plain.pt", *r, nullptr, b.get()).averaged);
  expect_tensors(*b, untouched, "average with no checkpointed one");
}

// --- run.device (train/device.h): a config choosing the CPU or a GPU ---

namespace {

// A valid config over a stub dataset (5 lines), then `extra` from line 6.
focaldet::config::Config device_config(const focaldet::test::TempDir& dir,
                                       const std::string& extra) {
  fs::create_directories(dir.path() / "data" / "images");
  dir.write("data/train.json", "{}");
  return focaldet::config::parse_config(
      "data:\n  image_root: data/images\n  train: data/train.json\ntrain:\n  max_iters: 10\n" +
          extra,
      "x.yaml", dir.str());
}

std::string device_error(const focaldet::config::Config& c, int local_rank, int world_size,
                         int cuda_devices) {
  try {
    resolve_device(c, local_rank, world_size, cuda_devices);
  } catch (const focaldet::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error for " << c.run.device;
  return "";
}

}  // namespace

// data.brightness / contrast / saturation reach the training loader only: evaluation sees the
// images as they are.
TEST(LoaderOptions, ColorJitterIsForTrainingOnly) {
  focaldet::test::TempDir tmp;
  fs::create_directories(tmp.path() / "data" / "images");
  tmp.write("data/train.json", "{}");
  const auto c = focaldet::config::parse_config(
      "data:\n  image_root: data/images\n  train: data/train.json\n  brightness: 0.2\n"
      "  contrast: 0.3\n  saturation: 0.4\ntrain:\n  max_iters: 10\n",
      "x.yaml", tmp.str());
  const auto train = train_loader_options(c).transform.jitter;
  EXPECT_DOUBLE_EQ(train.brightness, 0.2);
  EXPECT_DOUBLE_EQ(train.contrast, 0.3);
  EXPECT_DOUBLE_EQ(train.saturation, 0.4);
  EXPECT_FALSE(eval_loader_options(c).transform.jitter.enabled());
}

TEST(Device, CpuIsTheDefaultAndNeedsNoGpu) {
  focaldet::test::TempDir dir;
  EXPECT_EQ(run_device(device_config(dir, "")), torch::Device(torch::kCPU));
  EXPECT_EQ(resolve_device(device_config(dir, "run:\n  device: cpu\n"), /*local_rank=*/1,
                           /*world_size=*/2, /*cuda_devices=*/0),
            torch::Device(torch::kCPU));
}

// On this machine (Debian's CPU-only LibTorch) asking for a GPU is a config error naming the
// key's line, from the same call the trainer, eval and predict make before anything is written.
TEST(Device, CudaWithoutAVisibleGpuIsAnErrorNamingTheLine) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "a CUDA device is visible here";
  focaldet::test::TempDir dir;
  for (const std::string device : {"cuda", "cuda:0"}) {
    const auto c = device_config(dir, "run:\n  device: " + device + "\n");
    try {
      run_device(c);
      ADD_FAILURE() << device << ": no error";
    } catch (const focaldet::Error& e) {
      const std::string m = e.what();
      EXPECT_EQ(m.rfind("x.yaml:7: run.device: " + device + ": CUDA cannot be used: ", 0), 0u) << m;
      EXPECT_NE(m.find("no CUDA device"), std::string::npos) << m;
      EXPECT_NE(m.find("Use cpu"), std::string::npos) << m;
    }
  }
}

// "cuda" is each data-parallel rank's own GPU (cuda:LOCAL_RANK), as NCCL needs; "cuda:N" is one
// GPU for one process. Checked against a pretend count of visible GPUs.
TEST(Device, CudaIsTheRanksOwnGpuAndCudaNIsOneProcesssGpu) {
  focaldet::test::TempDir dir;
  const auto cuda = device_config(dir, "run:\n  device: cuda\n");
  EXPECT_EQ(resolve_device(cuda, 0, 1, 1), torch::Device(torch::kCUDA, 0));
  EXPECT_EQ(resolve_device(cuda, 1, 4, 2), torch::Device(torch::kCUDA, 1));
  const auto one = device_config(dir, "run:\n  device: cuda:1\n");
  EXPECT_EQ(resolve_device(one, 0, 1, 2), torch::Device(torch::kCUDA, 1));

  std::string e = device_error(cuda, /*local_rank=*/2, /*world_size=*/3, /*cuda_devices=*/2);
  EXPECT_EQ(e.rfind("x.yaml:7: run.device: cuda: this is rank 2 on its machine (LOCAL_RANK) but 2 "
                    "CUDA device(s) are visible",
                    0),
            0u)
      << e;
  e = device_error(one, 0, 1, /*cuda_devices=*/1);
  EXPECT_EQ(e,
            "x.yaml:7: run.device: cuda:1: no such GPU: 1 CUDA device(s) are visible (cuda:0 "
            "to cuda:0)");
  e = device_error(one, 0, /*world_size=*/2, /*cuda_devices=*/2);
  EXPECT_EQ(e.rfind("x.yaml:7: run.device: cuda:1 names one GPU, but this run has 2 "
                    "data-parallel ranks",
                    0),
            0u)
      << e;
  e = device_error(cuda, 0, 1, /*cuda_devices=*/0);
  EXPECT_NE(e.find("CUDA cannot be used"), std::string::npos) << e;
  // A Config built in code skips validate(): the same spelling rule holds.
  focaldet::config::Config odd = cuda;
  odd.run.device = "cuda:x";
  EXPECT_NE(device_error(odd, 0, 1, 2).find("must be cpu, cuda or cuda:N"), std::string::npos);
}

// --- The loss on other devices: the detector's tensor-op path ---

namespace {

DetectorOptions small_detector(bool fused) {
  DetectorOptions o;
  o.model.backbone.depth = 18;
  o.model.backbone.norm = focaldet::model::NormKind::kFrozenBatchNorm;
  o.model.fpn_channels = 32;
  o.model.head.num_convs = 1;
  o.model.head.channels = 32;
  o.model.head.num_classes = 3;
  o.cls.fused = fused;
  return o;
}

// Whether the autograd graph behind `t` holds the fused kernel's function (its node's name).
bool runs_fused_kernel(const torch::Tensor& t) {
  std::vector<torch::autograd::Node*> todo = {t.grad_fn().get()};
  std::set<torch::autograd::Node*> seen;
  while (!todo.empty()) {
    torch::autograd::Node* node = todo.back();
    todo.pop_back();
    if (node == nullptr || !seen.insert(node).second) continue;
    if (node->name().find("SigmoidFocalFunction") != std::string::npos) return true;
    for (const auto& edge : node->next_edges()) todo.push_back(edge.function.get());
  }
  return false;
}

focaldet::data::Batch two_images() {
  torch::manual_seed(3);
  focaldet::data::Batch b;
  b.images = torch::randn({2, 3, 128, 128});
  b.boxes = {torch::tensor({{10.f, 12.f, 60.f, 70.f}, {70.f, 20.f, 120.f, 50.f}}),
             torch::tensor({{30.f, 30.f, 94.f, 100.f}})};
  b.labels = {torch::tensor({0, 2}, torch::kLong), torch::tensor({1}, torch::kLong)};
  b.crowd_boxes = {torch::zeros({0, 4}), torch::tensor({{0.f, 90.f, 40.f, 127.f}})};
  b.image_ids = {1, 2};
  b.scales = {1.0, 1.0};
  b.original_sizes = {{128, 128}, {128, 128}};
  b.image_sizes = {{128, 128}, {128, 128}};
  b.flipped = {false, false};
  return b;
}

}  // namespace

// Flip TTA (inference.tta: hflip) merges a pass on the image with one on its mirror, so the
// detections of a mirrored image are the mirror of the image's detections; without TTA they
// are not (a random model is not mirror-symmetric), so the check can fail.
TEST(Detector, FlipTtaDetectionsMirrorWithTheImage) {
  auto detections = [](const std::string& tta, bool mirrored) {
    DetectorOptions o = small_detector(true);
    o.tta = tta;
    o.postprocess.score_thresh = 0.2;
    torch::manual_seed(11);
    Detector d(o);
    d.model()->eval();
    {
      torch::NoGradGuard no_grad;
      for (auto& p : d.model()->named_parameters()) {
        if (p.key().find("cls_logits.bias") != std::string::npos) p.value().uniform_(-3, 1);
      }
    }
    focaldet::data::Batch b = two_images();
    if (mirrored) b.images = b.images.flip(3);
    auto dets = d.detect(b)[1];
    if (mirrored) {  // mirrored back by hand: x1 = 128 - x2, x2 = 128 - x1
      const at::Tensor b = dets.boxes;
      dets.boxes = at::stack({128 - b.select(1, 2), b.select(1, 1), 128 - b.select(1, 0),
                              b.select(1, 3)}, 1);
    }
    return dets;
  };
  auto same = [](const focaldet::infer::Detections& a, const focaldet::infer::Detections& b) {
    return a.scores.size(0) == b.scores.size(0) && at::equal(a.labels, b.labels) &&
           at::allclose(a.scores, b.scores, 0, 1e-6) && at::allclose(a.boxes, b.boxes, 0, 1e-3);
  };
  const auto plain = detections("none", false), tta = detections("hflip", false);
  ASSERT_GT(tta.scores.size(0), 5);
  EXPECT_TRUE(same(tta, detections("hflip", true)));
  EXPECT_FALSE(same(plain, detections("none", true)));
  EXPECT_FALSE(same(plain, tta));  // the mirrored pass adds to and changes the detections
  EXPECT_TRUE(std::is_sorted(tta.scores.data_ptr<float>(),
                             tta.scores.data_ptr<float>() + tta.scores.size(0),
                             std::greater<float>()));
}

// On CUDA the sigmoid losses run as tensor ops (the fused kernel is CPU code): the detector's
// losses, their breakdown and every parameter's gradient on that path equal the fused path's,
// for each sigmoid loss. The head's class biases are spread so that there are hard negatives
// and confident positives, not only the prior's p = 0.01 everywhere.
TEST(Detector, TensorOpLossPathGivesTheFusedLossesAndGradients) {
  for (const auto kind : {focaldet::loss::ClsLossKind::Focal, focaldet::loss::ClsLossKind::CE,
                          focaldet::loss::ClsLossKind::OHEM}) {
    std::vector<TrainLosses> losses;
    std::vector<std::vector<torch::Tensor>> grads;
    for (const bool fused : {true, false}) {
      DetectorOptions o = small_detector(fused);
      o.cls.kind = kind;
      torch::manual_seed(11);
      Detector d(o);
      {
        torch::NoGradGuard no_grad;
        for (auto& p : d.model()->named_parameters()) {
          if (p.key().find("cls_logits.bias") != std::string::npos) p.value().uniform_(-4, 1);
        }
      }
      losses.push_back(d.losses(two_images()));
      // The option reaches the loss (else this would compare the fused path with itself).
      EXPECT_EQ(runs_fused_kernel(losses.back().total), fused);
      losses.back().total.backward();
      grads.emplace_back();
      for (const auto& p : d.model()->parameters()) {
        if (p.requires_grad()) grads.back().push_back(p.grad().clone());
      }
    }
    const std::string name = focaldet::loss::to_string(kind);
    const TrainLosses& f = losses[0];
    const TrainLosses& t = losses[1];
    ASSERT_GT(f.num_pos, 0) << name;
    ASSERT_GT(f.breakdown.num_neg_hard, 0) << name;
    // float32 sums of ~25k terms in another order and another exp/log: 1e-5 relative.
    EXPECT_NEAR(t.cls, f.cls, 1e-5 * std::abs(f.cls)) << name;
    EXPECT_EQ(t.box, f.box) << name;  // the box loss does not depend on the path
    EXPECT_NEAR(t.breakdown.loss_pos, f.breakdown.loss_pos, 1e-5 * std::abs(f.cls)) << name;
    EXPECT_NEAR(t.breakdown.loss_neg_hard, f.breakdown.loss_neg_hard, 1e-5 * std::abs(f.cls))
        << name;
    EXPECT_NEAR(t.breakdown.loss_neg_easy, f.breakdown.loss_neg_easy, 1e-5 * std::abs(f.cls))
        << name;
    EXPECT_EQ(t.breakdown.num_pos, f.breakdown.num_pos) << name;
    EXPECT_EQ(t.breakdown.num_neg_hard, f.breakdown.num_neg_hard) << name;
    EXPECT_EQ(t.breakdown.num_neg_easy, f.breakdown.num_neg_easy) << name;
    EXPECT_EQ(t.breakdown.num_ignored, f.breakdown.num_ignored) << name;
    ASSERT_EQ(grads[0].size(), grads[1].size());
    double worst = 0;
    for (size_t i = 0; i < grads[0].size(); ++i) {
      const double scale = grads[0][i].abs().max().item<double>();
      const double diff = (grads[1][i] - grads[0][i]).abs().max().item<double>();
      worst = std::max(worst, scale > 0 ? diff / scale : diff);
    }
    // Relative to each tensor's largest gradient: the same float32 reasoning.
    EXPECT_LT(worst, 1e-4) << name;
  }
}

// A detector stays where it was built until moved; to(CPU) on a CPU detector changes nothing.
TEST(Detector, StartsOnTheCpuAndToTheCpuChangesNothing) {
  torch::manual_seed(11);
  Detector d(small_detector(true));
  EXPECT_TRUE(d.device().is_cpu());
  const torch::Tensor w = d.model()->parameters()[0];
  const void* data = w.data_ptr();
  d.to(torch::kCPU);
  EXPECT_EQ(d.model()->parameters()[0].data_ptr(), data);
  EXPECT_TRUE(d.device().is_cpu());
}
