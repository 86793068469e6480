#include "train/trainer.h"

#include <ATen/Context.h>
#include <torch/types.h>
#include <torch/nn/utils/clip_grad.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <optional>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/error.h"
#include "config/config_io.h"
#include "dist/distributed.h"
#include "dist/gradient_reducer.h"
#include "eval/results_json.h"
#include "train/checkpoint.h"
#include "train/console.h"
#include "train/data_parallel.h"
#include "train/device.h"
#include "train/evaluate_split.h"
#include "train/from_config.h"
#include "train/metrics_log.h"
#include "train/model_average.h"

namespace focaldet::train {
namespace fs = std::filesystem;
namespace {

std::atomic<int> g_stop_signal{0};
extern "C" void on_stop_signal(int signal) { g_stop_signal.store(signal); }

// Installs the SIGINT / SIGTERM handlers for the lifetime of a run, restores the old ones after.
class StopSignals {
 public:
  StopSignals() {
    g_stop_signal.store(0);
    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    action.sa_flags = SA_RESTART;  // writes and reads in flight go on
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &old_int_);
    sigaction(SIGTERM, &action, &old_term_);
  }
  ~StopSignals() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  int received() const { return g_stop_signal.load(); }

 private:
  struct sigaction old_int_ {}, old_term_ {};
};

using Clock = std::chrono::steady_clock;
double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

std::string format_duration(double seconds) {
  const auto s = static_cast<int64_t>(std::max(0.0, seconds));
  char text[32];
  if (s >= 3600) {
    std::snprintf(text, sizeof text, "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  } else {
    std::snprintf(text, sizeof text, "%lld:%02lld", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  }
  return text;
}

template <typename... Args>
std::string format(const char* fmt, Args... args) {
  char text[256];
  std::snprintf(text, sizeof text, fmt, args...);
  return text;
}

// What a run's files are called.
struct RunFiles {
  explicit RunFiles(const std::string& dir)
      : root(dir),
        config(dir + "/config.yaml"),
        metrics(dir + "/metrics.jsonl"),
        evals(dir + "/eval.jsonl"),
        log(dir + "/train.log"),
        checkpoints(dir + "/checkpoints"),
        last(checkpoints + "/last.pt"),
        best(checkpoints + "/best.pt") {}
  std::string root, config, metrics, evals, log, checkpoints, last, best;
  std::string detections(const std::string& split) const {
    return root + "/detections_" + split + ".json";
  }
};

// The budget of a run and how far along it is.
class Budget {
 public:
  Budget(const config::TrainConfig& t, const data::Loader& loader) {
    if (t.max_iters > 0) {
      total_iters_ = t.max_iters;
    } else if (t.max_epochs > 0) {
      for (int64_t e = 0; e < t.max_epochs; ++e) total_iters_ += loader.num_batches(e);
    } else {
      total_seconds_ = t.max_minutes * 60.0;
    }
  }
  bool done(int64_t iteration, double elapsed) const {
    return total_iters_ > 0 ? iteration >= total_iters_ : elapsed >= total_seconds_;
  }
  double progress(int64_t iteration, double elapsed) const {
    return total_iters_ > 0 ? static_cast<double>(iteration) / static_cast<double>(total_iters_)
                            : elapsed / total_seconds_;
  }
  // Seconds left, from the mean step time so far.
  double eta(int64_t iteration, double elapsed, double seconds_per_step) const {
    return total_iters_ > 0 ? static_cast<double>(total_iters_ - iteration) * seconds_per_step
                            : total_seconds_ - elapsed;
  }
  std::string describe() const {
    return total_iters_ > 0 ? std::to_string(total_iters_) + " iterations"
                            : format("%.1f minutes", total_seconds_ / 60.0);
  }
  int64_t total_iters() const { return total_iters_; }

 private:
  int64_t total_iters_ = 0;
  double total_seconds_ = 0;
};

std::string eval_line(int64_t iteration, const std::string& split, const SplitEvaluation& e) {
  nlohmann::ordered_json j;
  j["iter"] = iteration;
  j["split"] = split;
  for (std::size_t k = 0; k < eval::kStatNames.size(); ++k) j[eval::kStatNames[k]] = e.result.stats[k];
  nlohmann::ordered_json ap = nlohmann::ordered_json::object(), ap50 = ap;
  for (std::size_t k = 0; k < e.result.category_names.size(); ++k) {
    ap[e.result.category_names[k]] = e.result.ap[k];
    ap50[e.result.category_names[k]] = e.result.ap50[k];
  }
  j["AP_per_class"] = ap;
  j["AP50_per_class"] = ap50;
  j["seconds"] = e.seconds;
  return j.dump();
}

// The loss parts that are not finite, named for the message ("" when all are).
std::string non_finite_parts(const TrainLosses& l) {
  std::string parts;
  if (!std::isfinite(l.cls)) parts += "classification loss = " + std::to_string(l.cls);
  if (!std::isfinite(l.box)) {
    parts += std::string(parts.empty() ? "" : ", ") + "box loss = " + std::to_string(l.box);
  }
  return parts;
}

bool exists(const std::string& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

// A new run may not silently replace a run dir that holds a run.
void check_new_run_dir(const RunFiles& files, bool overwrite) {
  std::error_code ec;
  if (fs::exists(files.root, ec) && !fs::is_empty(files.root, ec)) {
    check(overwrite, files.root + ": already holds a run (focaldet train --resume " + files.root +
                         " continues it; --overwrite starts it over)");
  }
}

// Makes the run directory of a new run, removing an old run's files (--overwrite).
void prepare_new_run_dir(const RunFiles& files) {
  std::error_code ec;
  for (const std::string& f : {files.metrics, files.evals, files.log, files.last, files.best,
                               files.detections("val")}) {
    fs::remove(f, ec);
    check(!ec, f + ": cannot remove: " + ec.message());
  }
  fs::create_directories(files.checkpoints, ec);
  check(!ec, files.checkpoints + ": cannot create: " + ec.message());
}

// focaldet's Gloo reduces CPU tensors (Distributed::device()): ranks that train on GPUs need
// NCCL. One process needs no reduction at all.
void check_ranks_can_reduce(const config::Config& c, bool on_cuda, const dist::DistEnv& env,
                            dist::Backend backend) {
  if (!on_cuda || !env.distributed() || backend != dist::Backend::gloo) return;
  throw Error(config::where(c, "run.device") + ": run.device: " + c.run.device + " trains " +
              std::to_string(env.world_size) + " ranks on GPUs, but dist.backend " +
              c.dist.backend + " (" + config::where(c, "dist.backend") +
              ") gives Gloo, which focaldet runs on CPU tensors" +
              (dist::built_with_nccl() ? std::string()
                                       : std::string(" (this focaldet was built without NCCL: "
                                                     "cmake -DFOCALDET_CUDA=ON)")) +
              ". Use dist.backend auto or nccl in a build with NCCL, or run.device: cpu");
}

}  // namespace

std::string default_run_dir(const config::Config& c) {
  std::string name = c.run.name;
  if (name.empty()) name = c.path.empty() ? "run" : fs::path(c.path).stem().string();
  return (fs::path(c.run.output_dir) / name).lexically_normal().string();
}

TrainOutcome train(const config::Config& c, const TrainArgs& args) {
  const RunFiles files(args.run_dir.empty() ? default_run_dir(c) : args.run_dir);
  // A checkpoint on a log boundary holds no half-averaged log window, so a resumed run logs
  // exactly the lines an uninterrupted one would.
  check(c.train.checkpoint_every % c.train.log_every == 0,
        config::where(c, "train.checkpoint_every") + ": train.checkpoint_every (" +
            std::to_string(c.train.checkpoint_every) + ") must be a multiple of train.log_every (" +
            std::to_string(c.train.log_every) + ")");
  if (args.resume) check(exists(files.last), files.last + ": no checkpoint to resume from");

  // Everything that can reject the input comes before the run dir is made.
  // The device (run.device) depends on this process's place among data-parallel ranks: "cuda"
  // is cuda:LOCAL_RANK. A GPU it cannot use is a config error, before anything is read.
  const dist::DistEnv env = dist::read_dist_env();
  const int threads = apply_threads(c, env.local_world_size);
  const torch::Device device = run_device(c, env.local_rank, env.world_size);
  make_current(device);
  torch::manual_seed(c.run.seed);
  const auto train_set = read_split(c, "train", /*for_training=*/true);
  const auto num_classes = static_cast<int64_t>(train_set->categories.size());
  std::shared_ptr<const data::CocoDataset> val_set;
  if (!c.data.val.empty()) val_set = read_split(c, "val", /*for_training=*/false, c.eval.max_images);
  if (val_set) {
    check(val_set->contiguous_to_category == train_set->contiguous_to_category,
          c.data.val + ": its categories differ from the train split's (" + c.data.train + ")");
  }
  // On the device before the optimizer takes its parameters and before the backend is chosen.
  std::unique_ptr<Detector> detector =
      make_detector(c, num_classes, /*load_weights=*/!args.resume, device);
  detector->model()->train();
  std::vector<torch::Tensor> parameters;
  for (const auto& p : detector->model()->parameters()) {
    if (p.requires_grad()) parameters.push_back(p);
  }
  auto optimizer = make_optimizer(parameters, optimizer_options(c));
  // train.ema_decay: a second model of the same config holds the moving average (evaluated,
  // and saved beside the trained weights).
  std::unique_ptr<Detector> averaged;
  if (c.train.ema_decay > 0) {
    averaged = make_detector(c, num_classes, /*load_weights=*/false, device);
    averaged->model()->eval();
  }
  torch::nn::Module* averaged_model = averaged ? averaged->model().get() : nullptr;

  // Data-parallel ranks (world size 1 without a launcher): each reads its shard of every
  // epoch, padded so that all take the same number of steps.
  dist::DistOptions dist_options;
  dist_options.timeout_seconds = c.dist.timeout_seconds;
  // dist.backend: NCCL only where the model is on CUDA (run.device: cuda), in a build with it.
  const bool on_cuda = !parameters.empty() && parameters[0].is_cuda();
  dist_options.backend =
      dist::select_backend(c.dist.backend, on_cuda, config::where(c, "dist.backend"));
  check_ranks_can_reduce(c, on_cuda, env, dist_options.backend);
  dist::Distributed dist(env, dist_options);
  const int world = dist.world_size();
  ScheduleOptions schedule = schedule_options(c);
  if (c.dist.lr_scaling == "linear") schedule.base_lr *= world;
  data::LoaderOptions train_options = train_loader_options(c);
  train_options.sampler.rank = dist.rank();
  train_options.sampler.world_size = world;
  train_options.sampler.pad_shards = dist.enabled();
  data::Loader loader(train_set, train_options);
  const Budget budget(c.train, loader);

  const bool main_rank = dist.is_main();
  if (args.resume) {
    if (main_rank) {
      remove_stale_temp_files(files.root);
      remove_stale_temp_files(files.checkpoints);
    }
  } else {
    // Every rank checks; only after all have, rank 0 makes the folder (else a slow rank would
    // find rank 0's new files and take them for an old run).
    check_new_run_dir(files, args.overwrite);
    dist.barrier();
    if (main_rank) {
      prepare_new_run_dir(files);
      write_file_atomic(files.config, config::to_yaml(c));
    }
  }
  Console console(files.log, c.train.progress, dist.rank());
  TrainState state;
  LogWindow window;
  if (args.resume) {
    state = load_checkpoint(files.last, *detector->model(), optimizer.get(), averaged_model);
    detector->normalizer().set_value(state.normalizer);
    window.restore(state.log_window);
    // Steps after the checkpoint are redone: their log lines go, so nothing is logged twice.
    if (main_rank) {
      truncate_jsonl(files.metrics, state.iteration);
      truncate_jsonl(files.evals, state.iteration);
    }
    console.info("resuming " + files.root + " at iteration " + std::to_string(state.iteration) +
                 " (epoch " + std::to_string(state.epoch) + ", batch " +
                 std::to_string(state.batch_in_epoch) + ")");
    if (state.world_size != world) {
      // An epoch budget counts the steps of the world size that started it.
      check(c.train.max_epochs == 0,
            files.last + ": written by " + std::to_string(state.world_size) +
                " rank(s); a run with a train.max_epochs budget resumes on as many ranks (its "
                "step count depends on them), this run has " + std::to_string(world));
      // The epoch goes on from the same number of images, now dealt over `world` ranks.
      const int64_t images_done = state.batch_in_epoch * c.train.batch_size * state.world_size;
      state.batch_in_epoch = images_done / (c.train.batch_size * world);
      if (state.batch_in_epoch >= loader.num_batches(state.epoch)) {
        ++state.epoch;  // the padded shards of the old world held more than this epoch has
        state.batch_in_epoch = 0;
      }
      // The moving-average normaliser is kept per rank, scaled by 1 / world size.
      detector->normalizer().set_value(detector->normalizer().value() *
                                       static_cast<double>(state.world_size) / world);
      console.warn("the checkpoint was written by " + std::to_string(state.world_size) +
                   " rank(s), this run has " + std::to_string(world) + ": epoch " +
                   std::to_string(state.epoch) + " goes on at batch " +
                   std::to_string(state.batch_in_epoch) + " (" + std::to_string(images_done) +
                   " of its images done; the rest of the epoch is dealt anew, so a few images "
                   "may be seen twice or skipped)");
    }
  } else {
    // Each rank divides by its share of the global batch's positives (LossNormalizer).
    detector->normalizer().set_value(detector->normalizer().value() / world);
    console.info("training " + files.root + ": " + std::to_string(train_set->images.size()) +
                 " images, " + std::to_string(num_classes) + " classes, " + c.loss.cls +
                 " loss, batch " + std::to_string(c.train.batch_size) +
                 (dist.enabled() ? " per rank x " + std::to_string(world) + " ranks" : "") + ", " +
                 std::to_string(threads) + " threads, budget " + budget.describe());
  }
  state.world_size = world;
  // Every rank starts from rank 0's model; gradients are averaged over the ranks every step.
  std::vector<torch::Tensor> model_tensors = detector->model()->parameters();
  for (const auto& b : detector->model()->buffers()) model_tensors.push_back(b);
  dist.broadcast(model_tensors);
  // A resumed run's average goes on from the checkpoint's (identical on every rank); one that
  // has none (a new run, or train.ema_decay set on resume) starts from the model.
  std::optional<ModelAverage> average;
  if (averaged_model != nullptr) {
    average.emplace(*detector->model(), *averaged_model, c.train.ema_decay,
                    /*start_from_model=*/!(args.resume && state.averaged));
    if (main_rank) {
      console.info(format("model EMA: decay %g (evaluation and checkpoints' model_ema use it)",
                          c.train.ema_decay));
    }
  }
  std::vector<torch::Tensor> averaged_buffers;
  if (averaged_model != nullptr) averaged_buffers = averaged_model->buffers();
  dist::GradientReducerOptions reducer_options;
  reducer_options.bucket_mb = c.dist.bucket_mb;
  reducer_options.overlap = c.dist.overlap;
  dist::GradientReducer reducer(dist, parameters, reducer_options);
  const auto sum_over_ranks = [&](double value) {
    std::vector<double> v = {value};
    dist.all_reduce_sum(v);
    return v[0];
  };
  // Trainable BatchNorm's running statistics follow each rank's batches: rank 0's are copied
  // to all before each step, evaluation and check (as DDP's broadcast_buffers).
  std::vector<torch::Tensor> buffers = detector->model()->buffers();
  const auto sync_buffers = [&] {
    if (dist.enabled() && c.model.norm == "bn") dist.broadcast(buffers);
  };
  // Whether any rank says yes (all ranks call it at the same point).
  const auto any_rank = [&](bool yes) {
    std::vector<double> v = {yes ? 1.0 : 0.0};
    dist.all_reduce_sum(v);
    return v[0] > 0;
  };

  // The last checkpoint known to be complete on disk (-1: none yet), for the messages of a
  // failed run: what is left, and how to go on once `fix` is done.
  int64_t last_saved = args.resume ? state.iteration : -1;
  const auto last_good = [&] {
    return last_saved >= 0 ? files.last + " (iteration " + std::to_string(last_saved) +
                                 ") is the last good state"
                           : std::string("no checkpoint was written yet");
  };
  const auto go_on = [&](const std::string& fix) {
    return " (" + fix + ", then " +
           (last_saved >= 0 ? "focaldet train --resume " + files.root
                            : std::string("start over with --overwrite")) +
           ")";
  };
  // Rank 0 alone writes checkpoints, metrics and evaluations.
  const auto save = [&](const std::string& path) {
    if (main_rank) {
      state.normalizer = detector->normalizer().value();
      state.log_window = window.state();
      try {
        save_checkpoint(path, *detector->model(), optimizer.get(), state, averaged_model);
      } catch (const Error& e) {
        // Disk full, quota, I/O error: the temp file is gone and the previous checkpoint intact.
        throw Error("iteration " + std::to_string(state.iteration) + ": " + e.what() + "; " +
                    last_good() + go_on("free some space"));
      }
    }
    if (path == files.last) last_saved = state.iteration;
  };
  // metrics.jsonl and eval.jsonl: a failed append stops the run; resume repairs the file.
  const auto append = [&](const std::string& path, const std::string& line) {
    if (!main_rank) return;
    try {
      append_line(path, line);
    } catch (const Error& e) {
      throw Error("iteration " + std::to_string(state.iteration) + ": " + e.what() + "; " +
                  last_good() + go_on("free some space"));
    }
  };
  // A run killed before its first periodic checkpoint can still be resumed.
  if (!args.resume) save(files.last);
  data::LoaderOptions eval_loader = eval_loader_options(c);
  eval_loader.sampler.rank = dist.rank();  // each rank infers on its shard; rank 0 evaluates
  eval_loader.sampler.world_size = world;
  const auto evaluate_val = [&] {
    if (!val_set) return;
    const Clock::time_point start = Clock::now();
    state.evaluated_iteration = state.iteration;
    sync_buffers();
    if (averaged_model != nullptr && dist.enabled() && c.model.norm == "bn") {
      // Each rank averaged its own BatchNorm statistics: all infer with rank 0's.
      dist.broadcast(averaged_buffers);
    }
    const std::vector<eval::Detection> detections = gather_detections(
        dist, detect_split(averaged ? *averaged : *detector, val_set, eval_loader), *val_set);
    if (!main_rank) return;
    SplitEvaluation e;
    e.detections = detections;
    eval::EvalOptions eval_options;
    eval_options.num_threads = threads;
    e.result = eval::evaluate(*val_set, e.detections, eval_options);
    e.seconds = seconds_between(start, Clock::now());
    append(files.evals, eval_line(state.iteration, "val", e));
    try {
      eval::write_results(files.detections("val"), e.detections);
    } catch (const Error& error) {
      throw Error("iteration " + std::to_string(state.iteration) + ": " + error.what() + "; " +
                  last_good() + go_on("free some space"));
    }
    const double ap = e.result.stats[0];
    console.info(format("eval iter %.0f on val: AP %.4f AP50 %.4f AP75 %.4f (%.1f s)",
                        static_cast<double>(state.iteration), ap, e.result.stats[1],
                        e.result.stats[2], e.seconds));
    if (ap > state.best_ap) {
      state.best_ap = ap;
      state.best_iteration = state.iteration;
      save(files.best);
    }
  };

  StopSignals signals;
  const Clock::time_point run_start =
      Clock::now() - std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(state.elapsed_seconds));
  // The training clock the budget and the schedule read: this process's, or with several
  // ranks rank 0's as of the last step, so that every rank takes the same decisions.
  double shared_elapsed = state.elapsed_seconds;
  const auto clock_now = [&] {
    return dist.enabled() ? shared_elapsed : seconds_between(run_start, Clock::now());
  };
  int64_t sync_checks = 0;
  double lr = 0;
  bool interrupted = false;
  while (!interrupted && !budget.done(state.iteration, clock_now())) {
    loader.start_epoch(state.epoch, state.batch_in_epoch);
    while (true) {
      const Clock::time_point step_start = Clock::now();
      const double clock_at_start = clock_now();
      if (budget.done(state.iteration, clock_at_start)) break;
      std::optional<data::Batch> batch;
      std::string data_error;
      try {
        batch = loader.next();
      } catch (const Error& e) {
        data_error = e.what();
      }
      // A corrupt or missing image mid-epoch, on any rank: every rank stops at this step.
      if (dist.enabled() && any_rank(!data_error.empty())) {
        const std::vector<std::string> errors = dist.all_gather_bytes(data_error);
        for (size_t r = 0; r < errors.size(); ++r) {
          if (!errors[r].empty()) {
            data_error = "rank " + std::to_string(r) + ": " + errors[r];
            break;
          }
        }
      }
      if (!data_error.empty()) {
        // Keep every step taken so far, so that a resume after the image is fixed starts at
        // this very batch.
        std::string not_saved;
        if (last_saved != state.iteration) {
          try {
            save(files.last);
          } catch (const Error& e) {
            not_saved = "; saving the steps taken failed too: " + std::string(e.what());
          }
        }
        const std::string message =
            "iteration " + std::to_string(state.iteration + 1) + " (epoch " +
            std::to_string(state.epoch) + ", batch " + std::to_string(state.batch_in_epoch) +
            "): " + data_error + "; the run stopped and " + last_good() +
            go_on("fix or replace the image") + not_saved;
        console.log_only(message);
        throw Error(message);
      }
      if (!batch) {
        ++state.epoch;
        state.batch_in_epoch = 0;
        break;
      }
      const double data_seconds = seconds_between(step_start, Clock::now());
      lr = learning_rate(schedule, state.iteration, budget.progress(state.iteration, clock_at_start));
      set_learning_rate(*optimizer, lr);
      sync_buffers();
      TrainLosses losses = detector->losses(
          *batch, dist.enabled() ? sum_over_ranks : std::function<double(double)>(), world);
      optimizer->zero_grad();
      losses.total.backward();
      reducer.synchronize();
      // What every rank agrees on: the global batch's losses, a stop asked on any rank, and
      // rank 0's clock. The checks below see the same numbers on every rank.
      const GlobalStep global = reduce_step(dist, losses, batch->size(), signals.received() != 0,
                                            seconds_between(run_start, Clock::now()));
      TrainLosses global_losses;
      global_losses.cls = global.cls;
      global_losses.box = global.box;
      if (const std::string bad = non_finite_parts(global_losses); !bad.empty()) {
        const std::string message =
            "iteration " + std::to_string(state.iteration + 1) + ": the loss is not finite (" +
            bad + "); the run stopped, " + last_good() +
            ". Lower optimizer.lr, raise schedule.warmup_iters or set optimizer.clip_grad_norm.";
        console.log_only(message);
        throw TrainingDiverged(message);
      }
      if (c.optimizer.clip_grad_norm > 0) {
        torch::nn::utils::clip_grad_norm_(parameters, c.optimizer.clip_grad_norm);
      }
      optimizer->step();
      ++state.iteration;
      if (average) average->update(state.iteration);
      ++state.batch_in_epoch;
      if (c.dist.check_sync_every > 0 && state.iteration % c.dist.check_sync_every == 0) {
        sync_buffers();
        check_in_sync(dist, *detector->model(), state.iteration);
        ++sync_checks;
      }

      const Clock::time_point step_end = Clock::now();
      state.elapsed_seconds = dist.enabled() ? global.elapsed : seconds_between(run_start, step_end);
      shared_elapsed = state.elapsed_seconds;
      StepStats stats;
      stats.loss = global.cls + c.loss.box_weight * global.box;
      stats.loss_cls = global.cls;
      stats.loss_box = global.box;
      stats.breakdown = global.breakdown;
      stats.images = global.images;
      stats.step_seconds = seconds_between(step_start, step_end);
      stats.data_seconds = data_seconds;
      window.add(stats);
      const double per_step = state.elapsed_seconds /
                              static_cast<double>(std::max<int64_t>(1, state.iteration));
      const double eta = budget.eta(state.iteration, state.elapsed_seconds, per_step);
      const std::string where_line =
          "iter " + std::to_string(state.iteration) +
          (budget.total_iters() > 0 ? "/" + std::to_string(budget.total_iters()) : "") +
          " ep " + std::to_string(state.epoch) + " | eta " + format_duration(eta) + " | ";
      if (state.iteration % c.train.log_every == 0) {
        LogSummary s = window.summary(state.iteration, state.epoch, lr, state.elapsed_seconds);
        if (!device.is_cpu()) s.peak_mem_mb = peak_memory_mb(device);  // the GPU's allocator
        append(files.metrics, to_json(s));
        console.step(where_line +
                     format("loss %.4f (cls %.4f box %.4f) | easy-neg %.1f%% of cls",
                            s.loss, s.loss_cls, s.loss_box, 100.0 * s.easy_neg_share) +
                     format(" | pos/img %.1f | lr %.2e | %.2f img/s",
                            s.num_pos / std::max<double>(1, static_cast<double>(stats.images)),
                            s.lr, s.img_per_s));
        window.clear();
      }
      console.status(where_line + format("loss %.4f (cls %.4f box %.4f) | easy-neg %.1f%% | %.2f img/s",
                                         stats.loss, stats.loss_cls, stats.loss_box,
                                         100.0 * global.breakdown.easy_neg_share(),
                                         stats.images / std::max(1e-9, stats.step_seconds)));
      if (c.train.eval_every > 0 && state.iteration % c.train.eval_every == 0) {
        evaluate_val();
      }
      if (c.train.checkpoint_every > 0 && state.iteration % c.train.checkpoint_every == 0) {
        save(files.last);
      }
      if (global.stop) {
        interrupted = true;
        break;
      }
    }
  }
  // A signal that came after the last step's agreement: every rank must hear of it.
  interrupted = any_rank(interrupted || signals.received() != 0);
  if (!interrupted && val_set && state.evaluated_iteration != state.iteration) evaluate_val();
  if (interrupted) {
    if (last_saved != state.iteration) save(files.last);
    console.info("stopped by signal " + std::to_string(signals.received()) + " at iteration " +
                 std::to_string(state.iteration) + "; checkpoint saved (focaldet train --resume " +
                 files.root + " continues)");
    return TrainOutcome::Interrupted;
  }
  if (last_saved != state.iteration) save(files.last);
  if (sync_checks > 0) {
    console.info("parameters and buffers equal on all " + std::to_string(world) +
                 " ranks at each of " + std::to_string(sync_checks) + " checks");
  }
  console.info(format("done: %.0f iterations in ", static_cast<double>(state.iteration)) +
               format_duration(state.elapsed_seconds) +
               (state.best_iteration >= 0
                    ? format(", best val AP %.4f at iteration %.0f", state.best_ap,
                             static_cast<double>(state.best_iteration))
                    : std::string()));
  return TrainOutcome::Finished;
}

}  // namespace focaldet::train
