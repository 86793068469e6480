#pragma once
// COCO bounding-box evaluation, exactly as pycocotools' COCOeval (evaluate, accumulate,
// summarize) with its default parameters: IoU thresholds .50:.05:.95, 101 recall points, area
// ranges all/small/medium/large by the ground truth's `area`, maxDets 1/10/100.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "data/coco_dataset.h"
#include "eval/detection.h"

namespace focaldet::eval {

constexpr int kNumIouThresholds = 10;  // T
constexpr int kNumRecallPoints = 101;  // R
constexpr int kNumAreaRanges = 4;      // A: all, small, medium, large
constexpr int kNumMaxDets = 3;         // M: 1, 10, 100
constexpr std::array<int, kNumMaxDets> kMaxDets = {1, 10, 100};

// pycocotools' iouThrs / recThrs, built as np.linspace builds them (i * step + start, last = stop)
// so that the floats, and therefore every comparison against them, are bit-identical.
const std::array<double, kNumIouThresholds>& iou_thresholds();
const std::array<double, kNumRecallPoints>& recall_thresholds();
// [lo, hi] per area range, inclusive: all [0, 1e10], small [0, 32^2], medium [32^2, 96^2],
// large [96^2, 1e10].
const std::array<std::array<double, 2>, kNumAreaRanges>& area_ranges();

// Names of COCOeval.stats in order: AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl.
extern const std::array<const char*, 12> kStatNames;

struct EvalOptions {
  int num_threads = 2;  // worker threads over categories; <= 0 uses hardware_concurrency()
};

// COCOeval.eval['precision'] [T, R, K, A, M] and ['recall'] [T, K, A, M], stored so that
// memory follows the ground truth, not K x 12,120 doubles (1.9 GB for 20,000 categories): only
// categories with regular ground truth in an area range have entries there (the others are
// all -1), and a precision curve over the 101 recall points is kept as runs of equal values,
// of which there are at most (true positives + 1) <= (regular gt + 1). Filled by evaluate();
// read through CocoEvalResult::precision_at / recall_at.
struct PrecisionRecall {
  std::vector<int32_t> slot;  // K: the category's place among the measured ones, or -1
  // Per measured category (slot), in ascending category order:
  std::vector<uint64_t> run_base;                                   // its first run
  std::vector<std::array<uint8_t, kNumAreaRanges>> runs_per_curve;  // 0 where no regular gt
  std::vector<double> recall;  // [slot, T, A, M], -1 where no regular gt in the area range
  // The runs; curve (t, a, m) of a slot starts at run_base + T * M * (sum of runs_per_curve
  // over the area ranges before a) + (t * M + m) * runs_per_curve[a]. A run holds one precision
  // value up to (not including) recall point run_end; the last one of a curve ends at 101, and
  // the places after it are unused.
  std::vector<double> run_value;
  std::vector<uint8_t> run_end;
};

struct CocoEvalResult {
  std::array<double, 12> stats{};           // COCOeval.stats; -1 where nothing could be measured
  std::vector<int64_t> category_ids;        // K, ascending (pycocotools' catIds order)
  std::vector<std::string> category_names;  // K, aligned with category_ids
  std::vector<double> ap;    // K: AP at IoU .50:.95, area all, maxDets 100; -1 without ground truth
  std::vector<double> ap50;  // K: AP at IoU .50, area all, maxDets 100; -1 without ground truth
  PrecisionRecall curves;    // behind precision_at / recall_at
  // Left out without a word by pycocotools (catIds and imgIds come from the ground truth):
  int64_t detections_left_out = 0;   // detections of categories not in gt.categories
  int64_t annotations_left_out = 0;  // gt annotations of images or categories not listed

  // COCOeval.eval['precision'][t, r, k, a, m] and ['recall'][t, k, a, m]: -1 where category k
  // has no regular ground truth in area range a. Throws std::out_of_range for an index outside.
  double precision_at(int t, int r, int k, int a, int m) const;
  double recall_at(int t, int k, int a, int m) const;
};

// Evaluates `detections` against `gt` (read with sanitize_boxes = false, so boxes are as
// written). Detections are taken as pycocotools' loadRes takes them: ids 1.. in list order,
// area = w * h, not crowd. A detection of a category that is not in `gt` is left out and
// counted (COCOeval evaluates catIds = the ground truth's only). Throws focaldet::Error naming
// the entry (its index) when a detection's image is not in `gt` (loadRes asserts that) or one
// of its numbers is not finite.
CocoEvalResult evaluate(const data::CocoDataset& gt, const std::vector<Detection>& detections,
                        const EvalOptions& options = {});

// The 12 lines COCOeval.summarize() prints, without trailing newlines.
std::vector<std::string> summary_lines(const CocoEvalResult& result);

}  // namespace focaldet::eval
