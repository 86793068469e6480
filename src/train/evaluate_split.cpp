#include "train/evaluate_split.h"

#include <chrono>

#include "infer/coco_results.h"

namespace focaldet::train {

std::vector<eval::Detection> detect_split(Detector& detector,
                                          std::shared_ptr<const data::CocoDataset> gt,
                                          const data::LoaderOptions& loader_options,
                                          const std::function<void(int64_t, int64_t)>& progress) {
  const bool was_training = detector.model()->is_training();
  detector.model()->eval();
  data::Loader loader(gt, loader_options);
  loader.start_epoch(0);
  std::vector<eval::Detection> detections;
  int64_t done = 0;
  while (auto batch = loader.next()) {
    const std::vector<infer::Detections> dets = detector.detect(*batch);
    for (int64_t i = 0; i < batch->size(); ++i) {
      const std::vector<eval::Detection> coco = infer::to_coco_results(
          dets[i], batch->image_ids[i], gt->contiguous_to_category, batch->flipped[i],
          batch->original_sizes[i][1]);
      detections.insert(detections.end(), coco.begin(), coco.end());
    }
    done += batch->size();
    if (progress) progress(done, loader.num_samples());
  }
  detector.model()->train(was_training);
  return detections;
}

SplitEvaluation evaluate_split(Detector& detector, std::shared_ptr<const data::CocoDataset> gt,
                               const data::LoaderOptions& loader_options, int eval_threads,
                               const std::function<void(int64_t, int64_t)>& progress) {
  const auto start = std::chrono::steady_clock::now();
  SplitEvaluation out;
  out.detections = detect_split(detector, gt, loader_options, progress);
  const double infer_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  eval::EvalOptions eval_options;
  eval_options.num_threads = eval_threads;
  out.result = eval::evaluate(*gt, out.detections, eval_options);
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  out.images_per_second =
      infer_seconds > 0 ? static_cast<double>(gt->images.size()) / infer_seconds : 0.0;
  return out;
}

}  // namespace focaldet::train
