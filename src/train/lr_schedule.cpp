#include "train/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace focaldet::train {

ScheduleKind parse_schedule(const std::string& name) {
  if (name == "constant") return ScheduleKind::Constant;
  if (name == "step") return ScheduleKind::Step;
  if (name == "cosine") return ScheduleKind::Cosine;
  throw Error("unknown schedule '" + name + "' (expected constant, step or cosine)");
}

double learning_rate(const ScheduleOptions& o, int64_t iteration, double progress) {
  progress = std::clamp(progress, 0.0, 1.0);
  double lr = o.base_lr;
  switch (o.kind) {
    case ScheduleKind::Constant:
      break;
    case ScheduleKind::Step:
      for (double s : o.steps) {
        if (progress >= s) lr *= o.gamma;
      }
      break;
    case ScheduleKind::Cosine: {
      const double floor = o.base_lr * o.min_lr_factor;
      lr = floor + (o.base_lr - floor) * 0.5 * (1.0 + std::cos(M_PI * progress));
      break;
    }
  }
  if (iteration < o.warmup_iters) {
    // detectron2's WarmupParamScheduler: factor goes linearly from warmup_factor to 1.
    const double alpha = static_cast<double>(iteration) / static_cast<double>(o.warmup_iters);
    lr *= o.warmup_factor * (1.0 - alpha) + alpha;
  }
  return lr;
}

}  // namespace focaldet::train
