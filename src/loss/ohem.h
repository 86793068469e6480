#pragma once
// Online hard example mining for the sigmoid cross-entropy (Liu et al., SSD, 2016, sec. 2.2):
// per image, every positive anchor plus the negatives with the largest loss, at most
// neg_pos_ratio of them per positive; every other negative contributes nothing.
#include <torch/types.h>

#include "loss/loss_breakdown.h"
#include "loss/reduction.h"

namespace focaldet::loss {

struct OhemOptions {
  double neg_pos_ratio = 3.0;  // negatives kept per positive (SSD: 3:1)
  int64_t images = 1;          // the N rows are `images` equal blocks, one per image
  Reduction reduction = Reduction::Sum;
  double easy_prob = 0.1;  // for the breakdown, as in FocalOptions
  bool fused = true;       // as in FocalOptions
};

// Which anchors OHEM keeps: targets with the negatives it drops set to -2 (ignored). As in SSD,
// an image keeps min(neg_pos_ratio * positives, negatives) negatives, so an image without
// objects contributes nothing. logits [N, C], targets [N]; N divisible by options.images.
torch::Tensor ohem_select(const torch::Tensor& logits, const torch::Tensor& targets,
                          const OhemOptions& options);

// Sigmoid cross-entropy (gamma 0, no alpha) over the anchors ohem_select keeps. In `breakdown`,
// dropped negatives are counted as ignored.
torch::Tensor ohem_loss(const torch::Tensor& logits, const torch::Tensor& targets,
                        const OhemOptions& options = {}, LossBreakdown* breakdown = nullptr);

}  // namespace focaldet::loss
