#pragma once
// What `focaldet eval` prints and writes for a CocoEvalResult: pycocotools' 12 summary lines,
// a per-category table, and the metrics json (the 12 stats by name, AP per category id).
#include <string>

#include "eval/coco_eval.h"

namespace focaldet::eval {

// summarize()'s 12 lines followed by a table: category name, AP, AP50 (area all, maxDets 100);
// "-" for a category without ground truth. Names are printed with control characters escaped
// (\n, \x1b) and cut to 40 columns ("..."), so a ground truth file cannot forge report lines
// nor widen every row.
std::string format_report(const CocoEvalResult& result);

// {"AP": .., "AP50": .., ..., "ARl": .., "AP_per_category": {"<id>": ..},
//  "AP50_per_category": {"<id>": ..}}; -1 where pycocotools reports -1. indent < 0: one line.
std::string metrics_json(const CocoEvalResult& result, int indent = 1);

// metrics_json written atomically to `path`.
void write_metrics_json(const std::string& path, const CocoEvalResult& result);

}  // namespace focaldet::eval
