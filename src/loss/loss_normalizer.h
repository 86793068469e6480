#pragma once
// What the summed classification and box losses are divided by. Both follow the paper: the
// number of positive anchors, at least 1. The EMA variant smooths it across iterations as
// detectron2's RetinaNet does (momentum 0.9, starting at 100), so a batch with few objects does
// not get a huge gradient.
#include <cstdint>
#include <string>

namespace focaldet::loss {

enum class NormalizerKind { NumPositives, Ema };

// "num_pos" | "ema"; throws focaldet::Error naming the value otherwise.
NormalizerKind parse_normalizer(const std::string& name);

class LossNormalizer {
 public:
  explicit LossNormalizer(NormalizerKind kind = NormalizerKind::NumPositives, double momentum = 0.9,
                          double initial = 100.0);

  // Takes this iteration's number of positive anchors (over the whole batch) and returns the
  // divisor for this iteration: max(1, num_pos), or the updated moving average. Data-parallel
  // training passes the count over all ranks' batches and the number of ranks: each rank then
  // divides by max(1, num_pos) / ranks, so that the mean of the ranks' gradients is the
  // gradient of the global batch (the moving average then starts at initial / ranks).
  double update(double num_positives, int ranks = 1);
  double value() const { return value_; }
  // For checkpoints: the moving average is training state.
  void set_value(double value) { value_ = value; }

 private:
  NormalizerKind kind_;
  double momentum_;
  double value_;
};

}  // namespace focaldet::loss
