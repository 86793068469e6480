#pragma once
// The common tail of the losses written as tensor ops (softmax focal, and sigmoid focal off the
// CPU): the breakdown by kind of anchor, then the reduction.
#include <torch/types.h>

#include "loss/loss_breakdown.h"
#include "loss/reduction.h"

namespace focaldet::loss::detail {

// loss: [N] or [N, C], already zero on ignored anchors; targets: [N] (class, -1, -2);
// all_below_easy: [N] bool, every class probability of the anchor below easy_prob; elements:
// how many values Mean averages over. Fills `breakdown` when not null, in the returned scale.
torch::Tensor reduce_with_breakdown(const torch::Tensor& loss, const torch::Tensor& targets,
                                    const torch::Tensor& all_below_easy, double elements,
                                    Reduction reduction, LossBreakdown* breakdown);

}  // namespace focaldet::loss::detail
