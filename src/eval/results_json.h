#pragma once
// COCO results json (a list of {"image_id", "category_id", "bbox": [x, y, w, h], "score"}):
// reading with validation, and writing in a form pycocotools' loadRes takes unchanged.
#include <string>
#include <string_view>
#include <vector>

#include "eval/detection.h"

namespace focaldet::eval {

// Reads a results file. Throws focaldet::Error naming the file and the offending entry (its
// index in the list) for: not a list, an entry that is not an object, a missing key, an id that
// is not an integer, a bbox that is not a list of 4 numbers, a non-finite number. Other keys
// ("id", "area", "segmentation", ...) are ignored, as loadRes recomputes them for boxes.
// Files of 4 MB and more are parsed on two threads when num_threads >= 2 (same result).
std::vector<Detection> read_results(const std::string& json_path, int num_threads = 2);

// The same from text in memory; `origin` names it in messages.
std::vector<Detection> parse_results(std::string_view json, const std::string& origin,
                                     int num_threads = 2);

// Writes `detections` as a results json list, atomically (temp file + rename). Numbers are
// written with the shortest text that reads back as the same double.
void write_results(const std::string& json_path, const std::vector<Detection>& detections);

}  // namespace focaldet::eval
