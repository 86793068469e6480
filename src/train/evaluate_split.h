#pragma once
// Runs the detector over one split of a dataset and evaluates the detections as pycocotools
// would: what training does at each evaluation, and what `focaldet eval --checkpoint` does.
#include <functional>
#include <memory>
#include <vector>

#include "data/coco_dataset.h"
#include "data/loader.h"
#include "eval/coco_eval.h"
#include "eval/detection.h"
#include "train/detector.h"

namespace focaldet::train {

struct SplitEvaluation {
  eval::CocoEvalResult result;
  std::vector<eval::Detection> detections;  // COCO results (dataset category ids)
  double seconds = 0;                       // inference and evaluation
  double images_per_second = 0;             // inference alone
};

// `gt` must be read with sanitize_boxes = false (boxes as written, as pycocotools keeps them);
// `loader_options` should not flip (infer::to_coco_results maps horizontal flips back). The
// model is put in eval mode and back into the mode it was in. `progress`, when set, is called
// after each batch with (images done, images in the split).
// Inference alone: the detections of every image the loader yields (a data-parallel rank's
// shard when loader_options.sampler is sharded), in COCO results form.
std::vector<eval::Detection> detect_split(Detector& detector,
                                          std::shared_ptr<const data::CocoDataset> gt,
                                          const data::LoaderOptions& loader_options,
                                          const std::function<void(int64_t, int64_t)>& progress = {});

SplitEvaluation evaluate_split(Detector& detector, std::shared_ptr<const data::CocoDataset> gt,
                               const data::LoaderOptions& loader_options, int eval_threads,
                               const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace focaldet::train
