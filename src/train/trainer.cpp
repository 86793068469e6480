#include "train/trainer.h"

#include <ATen/Context.h>
#include <torch/types.h>
#include <torch/nn/utils/clip_grad.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/error.h"
#include "config/config_io.h"
#include "eval/results_json.h"
#include "train/checkpoint.h"
#include "train/console.h"
#include "train/evaluate_split.h"
#include "train/from_config.h"
#include "train/metrics_log.h"

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

// Makes (or checks) the run directory of a new run.
void prepare_new_run_dir(const RunFiles& files, bool overwrite) {
  std::error_code ec;
  if (fs::exists(files.root, ec) && !fs::is_empty(files.root, ec)) {
    check(overwrite, files.root + ": already holds a run (focaldet train --resume " + files.root +
                         " continues it; --overwrite starts it over)");
    for (const std::string& f : {files.metrics, files.evals, files.log, files.last, files.best,
                                 files.detections("val")}) {
      fs::remove(f, ec);
      check(!ec, f + ": cannot remove: " + ec.message());
    }
  }
  fs::create_directories(files.checkpoints, ec);
  check(!ec, files.checkpoints + ": cannot create: " + ec.message());
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
  const int threads = apply_threads(c);
  torch::manual_seed(c.run.seed);
  const auto train_set = read_split(c, "train", /*for_training=*/true);
  const auto num_classes = static_cast<int64_t>(train_set->categories.size());
  std::shared_ptr<const data::CocoDataset> val_set;
  if (!c.data.val.empty()) val_set = read_split(c, "val", /*for_training=*/false, c.eval.max_images);
  if (val_set) {
    check(val_set->contiguous_to_category == train_set->contiguous_to_category,
          c.data.val + ": its categories differ from the train split's (" + c.data.train + ")");
  }
  std::unique_ptr<Detector> detector = make_detector(c, num_classes, /*load_weights=*/!args.resume);
  detector->model()->train();
  std::vector<torch::Tensor> parameters;
  for (const auto& p : detector->model()->parameters()) {
    if (p.requires_grad()) parameters.push_back(p);
  }
  auto optimizer = make_optimizer(parameters, optimizer_options(c));
  const ScheduleOptions schedule = schedule_options(c);
  data::Loader loader(train_set, train_loader_options(c));
  const Budget budget(c.train, loader);

  if (args.resume) {
    remove_stale_temp_files(files.root);
    remove_stale_temp_files(files.checkpoints);
  } else {
    prepare_new_run_dir(files, args.overwrite);
    write_file_atomic(files.config, config::to_yaml(c));
  }
  Console console(files.log, c.train.progress);
  TrainState state;
  LogWindow window;
  if (args.resume) {
    state = load_checkpoint(files.last, *detector->model(), optimizer.get());
    detector->normalizer().set_value(state.normalizer);
    window.restore(state.log_window);
    // Steps after the checkpoint are redone: their log lines go, so nothing is logged twice.
    truncate_jsonl(files.metrics, state.iteration);
    truncate_jsonl(files.evals, state.iteration);
    console.info("resuming " + files.root + " at iteration " + std::to_string(state.iteration) +
                 " (epoch " + std::to_string(state.epoch) + ", batch " +
                 std::to_string(state.batch_in_epoch) + ")");
  } else {
    console.info("training " + files.root + ": " + std::to_string(train_set->images.size()) +
                 " images, " + std::to_string(num_classes) + " classes, " + c.loss.cls +
                 " loss, batch " + std::to_string(c.train.batch_size) + ", " +
                 std::to_string(threads) + " threads, budget " + budget.describe());
  }

  // The last checkpoint known to be complete on disk, for the messages of a failed write.
  int64_t last_saved = state.iteration;
  const auto last_good = [&] {
    return files.last + " (iteration " + std::to_string(last_saved) + ") is the last good state";
  };
  const auto save = [&](const std::string& path) {
    state.normalizer = detector->normalizer().value();
    state.log_window = window.state();
    try {
      save_checkpoint(path, *detector->model(), optimizer.get(), state);
    } catch (const Error& e) {
      // Disk full, quota, I/O error: the temp file is gone and the previous checkpoint intact.
      throw Error("iteration " + std::to_string(state.iteration) + ": " + e.what() + "; " +
                  last_good() + " (free some space, then focaldet train --resume " + files.root +
                  ")");
    }
    if (path == files.last) last_saved = state.iteration;
  };
  // metrics.jsonl and eval.jsonl: a failed append stops the run; resume repairs the file.
  const auto append = [&](const std::string& path, const std::string& line) {
    try {
      append_line(path, line);
    } catch (const Error& e) {
      throw Error("iteration " + std::to_string(state.iteration) + ": " + e.what() + "; " +
                  last_good() + " (focaldet train --resume " + files.root + " continues)");
    }
  };
  // A run killed before its first periodic checkpoint can still be resumed.
  if (!args.resume) save(files.last);
  const data::LoaderOptions eval_loader = eval_loader_options(c);
  const auto evaluate_val = [&] {
    if (!val_set) return;
    SplitEvaluation e = evaluate_split(*detector, val_set, eval_loader, threads);
    state.evaluated_iteration = state.iteration;
    append(files.evals, eval_line(state.iteration, "val", e));
    eval::write_results(files.detections("val"), e.detections);
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
  double lr = 0;
  bool interrupted = false;
  while (!interrupted && !budget.done(state.iteration, seconds_between(run_start, Clock::now()))) {
    loader.start_epoch(state.epoch, state.batch_in_epoch);
    while (true) {
      const Clock::time_point step_start = Clock::now();
      if (budget.done(state.iteration, seconds_between(run_start, step_start))) break;
      std::optional<data::Batch> batch;
      try {
        batch = loader.next();
      } catch (const Error& e) {
        // A corrupt or missing image mid-epoch: keep every step taken so far, so that a resume
        // after the image is fixed starts at this very batch.
        if (last_saved != state.iteration) save(files.last);
        const std::string message =
            "iteration " + std::to_string(state.iteration + 1) + " (epoch " +
            std::to_string(state.epoch) + ", batch " + std::to_string(state.batch_in_epoch) +
            "): " + e.what() + "; the run stopped and " + last_good() +
            " (fix or replace the image, then focaldet train --resume " + files.root + ")";
        console.log_only(message);
        throw Error(message);
      }
      if (!batch) {
        ++state.epoch;
        state.batch_in_epoch = 0;
        break;
      }
      const double data_seconds = seconds_between(step_start, Clock::now());
      lr = learning_rate(schedule, state.iteration,
                         budget.progress(state.iteration, seconds_between(run_start, step_start)));
      set_learning_rate(*optimizer, lr);
      TrainLosses losses = detector->losses(*batch);
      if (const std::string bad = non_finite_parts(losses); !bad.empty()) {
        const std::string message =
            "iteration " + std::to_string(state.iteration + 1) + ": the loss is not finite (" +
            bad + "); the run stopped, " + last_good() +
            ". Lower optimizer.lr, raise schedule.warmup_iters or set optimizer.clip_grad_norm.";
        console.log_only(message);
        throw TrainingDiverged(message);
      }
      optimizer->zero_grad();
      losses.total.backward();
      if (c.optimizer.clip_grad_norm > 0) {
        torch::nn::utils::clip_grad_norm_(parameters, c.optimizer.clip_grad_norm);
      }
      optimizer->step();
      ++state.iteration;
      ++state.batch_in_epoch;

      const Clock::time_point step_end = Clock::now();
      state.elapsed_seconds = seconds_between(run_start, step_end);
      StepStats stats;
      stats.loss = losses.cls + c.loss.box_weight * losses.box;
      stats.loss_cls = losses.cls;
      stats.loss_box = losses.box;
      stats.breakdown = losses.breakdown;
      stats.images = batch->size();
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
        const LogSummary s = window.summary(state.iteration, state.epoch, lr, state.elapsed_seconds);
        append(files.metrics, to_json(s));
        console.step(where_line +
                     format("loss %.4f (cls %.4f box %.4f) | easy-neg %.1f%% of cls",
                            s.loss, s.loss_cls, s.loss_box, 100.0 * s.easy_neg_share) +
                     format(" | pos/img %.1f | lr %.2e | %.2f img/s", s.num_pos / std::max<double>(1, batch->size()),
                            s.lr, s.img_per_s));
        window.clear();
      }
      console.status(where_line + format("loss %.4f (cls %.4f box %.4f) | easy-neg %.1f%% | %.2f img/s",
                                         stats.loss, stats.loss_cls, stats.loss_box,
                                         100.0 * losses.breakdown.easy_neg_share(),
                                         stats.images / std::max(1e-9, stats.step_seconds)));
      if (c.train.eval_every > 0 && state.iteration % c.train.eval_every == 0) {
        evaluate_val();
      }
      if (c.train.checkpoint_every > 0 && state.iteration % c.train.checkpoint_every == 0) {
        save(files.last);
      }
      if (signals.received() != 0) {
        interrupted = true;
        break;
      }
    }
  }
  if (!interrupted && signals.received() == 0 && val_set &&
      state.evaluated_iteration != state.iteration) {
    evaluate_val();
  }
  if (interrupted || signals.received() != 0) {
    if (last_saved != state.iteration) save(files.last);
    console.info("stopped by signal " + std::to_string(signals.received()) + " at iteration " +
                 std::to_string(state.iteration) + "; checkpoint saved (focaldet train --resume " +
                 files.root + " continues)");
    return TrainOutcome::Interrupted;
  }
  if (last_saved != state.iteration) save(files.last);
  console.info(format("done: %.0f iterations in ", static_cast<double>(state.iteration)) +
               format_duration(state.elapsed_seconds) +
               (state.best_iteration >= 0
                    ? format(", best val AP %.4f at iteration %.0f", state.best_ap,
                             static_cast<double>(state.best_iteration))
                    : std::string()));
  return TrainOutcome::Finished;
}

}  // namespace focaldet::train
