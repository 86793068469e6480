#pragma once
// The learning rate at a point of training: linear warmup over the first iterations (Goyal et
// al. 2017), then constant, step decay or cosine annealing over the budget. Progress is the
// fraction of the budget done (iterations, epochs or wall-clock minutes), so the same schedule
// serves every kind of budget. No torch here.
#include <cstdint>
#include <string>
#include <vector>

namespace focaldet::train {

enum class ScheduleKind { Constant, Step, Cosine };
ScheduleKind parse_schedule(const std::string& name);  // "constant" | "step" | "cosine"

struct ScheduleOptions {
  ScheduleKind kind = ScheduleKind::Cosine;
  double base_lr = 0.01;
  int64_t warmup_iters = 100;
  double warmup_factor = 0.001;        // lr at iteration 0 is base_lr * this
  std::vector<double> steps = {0.67, 0.89};  // Step: progress fractions where lr *= gamma
  double gamma = 0.1;
  double min_lr_factor = 0.0;          // Cosine ends at base_lr * this
};

// iteration: 0-based count of steps taken; progress: fraction of the budget done, in [0, 1].
double learning_rate(const ScheduleOptions& options, int64_t iteration, double progress);

}  // namespace focaldet::train
