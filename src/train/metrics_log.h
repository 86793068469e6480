#pragma once
// The loss logger: training steps are averaged over a log window into one metrics.jsonl line,
// with the classification loss split into positives, hard negatives and easy negatives, so the
// share of the loss that easy background anchors carry is visible at every log step. Also the
// append-only jsonl files of a run and their repair on resume. No torch here.
#include <cstdint>
#include <string>
#include <vector>

#include "loss/loss_breakdown.h"

namespace focaldet::train {

// One optimizer step, as the trainer measured it.
struct StepStats {
  double loss = 0, loss_cls = 0, loss_box = 0;
  loss::LossBreakdown breakdown;  // of loss_cls, same scale
  int64_t images = 0;
  double step_seconds = 0;  // wall clock of the whole step, data wait included
  double data_seconds = 0;  // of which waiting for the loader
};

// One metrics.jsonl line: means over the window's steps (counts are per step).
struct LogSummary {
  int64_t iter = 0;  // steps taken when the line was written
  int64_t epoch = 0;
  double lr = 0;
  double loss = 0, loss_cls = 0, loss_box = 0;
  double num_pos = 0, num_neg_easy = 0, num_neg_hard = 0;
  double loss_cls_pos = 0, loss_cls_neg_hard = 0, loss_cls_neg_easy = 0;
  double easy_neg_share = 0;        // loss_cls_neg_easy / loss_cls
  double easy_neg_share_total = 0;  // loss_cls_neg_easy / loss
  double img_per_s = 0;
  double images = 0;  // images per step (the global batch: batch_size x data-parallel ranks)
  double data_time = 0;             // mean seconds a step waited for data
  double peak_mem_mb = 0;           // the process's peak resident memory (the trainer puts the
                                    // GPU allocator's peak here on CUDA: train/device.h)
  double time = 0;                  // training seconds since the run started
};

class LogWindow {
 public:
  void add(const StepStats& step);
  int64_t steps() const { return steps_; }
  // The window's means; iter, epoch, lr and time are the caller's.
  LogSummary summary(int64_t iter, int64_t epoch, double lr, double time) const;
  void clear() { *this = LogWindow(); }
  // The sums, for checkpoints; restore() takes what state() gave (empty: a clear window).
  std::vector<double> state() const;
  void restore(const std::vector<double>& state);

 private:
  int64_t steps_ = 0, images_ = 0;
  double loss_ = 0, loss_cls_ = 0, loss_box_ = 0;
  double pos_ = 0, neg_hard_ = 0, neg_easy_ = 0;
  double loss_pos_ = 0, loss_neg_hard_ = 0, loss_neg_easy_ = 0;
  double seconds_ = 0, data_seconds_ = 0;
};

// The line as JSON (one object, no newline). Doubles are written so they read back exactly.
std::string to_json(const LogSummary& s);

// Peak resident memory of this process in MiB (getrusage).
double peak_memory_mb();

// Appends `line` and a newline to `path` in one write, then fsyncs: a kill leaves either the
// whole line or none of it (a torn last line is dropped by truncate_jsonl on resume).
void append_line(const std::string& path, const std::string& line);

// Resume: rewrites `path` (atomically) keeping the complete lines whose "iter" is <= max_iter,
// so the steps redone after the checkpoint are not logged twice. No file: nothing to do.
void truncate_jsonl(const std::string& path, int64_t max_iter);

}  // namespace focaldet::train
