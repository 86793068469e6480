#pragma once
// The trainer's side of data-parallel training (docs/distributed.md): what the ranks agree on
// after each step, evaluation sharded over the ranks and gathered on rank 0, and the check that
// every rank holds the same parameters. With world size 1 each call costs nothing and returns
// this process's own numbers.
#include <torch/nn/module.h>

#include <cstdint>
#include <vector>

#include "data/coco_dataset.h"
#include "dist/distributed.h"
#include "eval/detection.h"
#include "loss/loss_breakdown.h"
#include "train/detector.h"

namespace focaldet::train {

// One step over all ranks. Each rank's losses are normalised by the mean count of positives
// over the ranks, so their mean is the loss of the global batch; counts and images are totals.
struct GlobalStep {
  double cls = 0, box = 0;
  loss::LossBreakdown breakdown;  // of cls, same scale; counts over all ranks
  int64_t images = 0;
  bool stop = false;         // some rank asked to stop (a signal, or its clock ran out)
  double elapsed = 0;        // rank 0's training clock, so that every rank's schedule agrees
};

// Sums this step's numbers over the ranks (one all-reduce).
GlobalStep reduce_step(dist::Distributed& dist, const TrainLosses& losses, int64_t images,
                       bool stop, double elapsed);

// Every rank's detections on rank 0, in the order one process evaluating the split in file
// order would have made them (pycocotools breaks score ties by that order); the other ranks
// get none. `local` holds this rank's shard of the split.
std::vector<eval::Detection> gather_detections(dist::Distributed& dist,
                                               const std::vector<eval::Detection>& local,
                                               const data::CocoDataset& gt);

// Throws focaldet::Error naming the first parameter or buffer whose bytes differ between this
// rank and rank 0 (every rank throws the same). One all-gather of a hash per tensor.
void check_in_sync(dist::Distributed& dist, const torch::nn::Module& model, int64_t iteration);

}  // namespace focaldet::train
