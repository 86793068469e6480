#pragma once
// The classification loss of one batch split by the kind of anchor that carries it, so the
// logger can show how much of the loss easy background anchors carry (Lin et al. 2017, sec. 5.1:
// with cross-entropy the vast majority of easy negatives dominate the loss; focal loss down-weights
// them). Filled alongside the forward pass, not by a second loss evaluation.
#include <cstdint>

namespace focaldet::loss {

struct LossBreakdown {
  // Sums of the loss of each kind of anchor, in the same scale as the returned loss (for Mean the
  // sums are divided by the same count), so loss_pos + loss_neg_hard + loss_neg_easy == total.
  double loss_pos = 0;       // anchors assigned to an object (all of their class terms)
  double loss_neg_hard = 0;  // background anchors with some class probability >= easy_prob
  double loss_neg_easy = 0;  // background anchors with every class probability < easy_prob
  int64_t num_pos = 0;
  int64_t num_neg_hard = 0;
  int64_t num_neg_easy = 0;
  int64_t num_ignored = 0;  // target -2 (and, for OHEM, negatives it did not keep)

  double total() const { return loss_pos + loss_neg_hard + loss_neg_easy; }
  // Share of the total classification loss carried by easy negatives, in [0, 1]; 0 if total is 0.
  double easy_neg_share() const { return total() > 0 ? loss_neg_easy / total() : 0.0; }
  // Multiplies the three loss sums by `factor` (normalisation by the number of positives).
  void scale(double factor) {
    loss_pos *= factor;
    loss_neg_hard *= factor;
    loss_neg_easy *= factor;
  }
};

}  // namespace focaldet::loss
