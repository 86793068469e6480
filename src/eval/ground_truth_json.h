#pragma once
// The ground truth as `focaldet eval GT DETS` reads it: only what pycocotools' COCOeval uses
// for bbox, with pycocotools' leniency. Training reads the same files strictly (data::read_coco
// refuses an absolute or '..' file_name, a missing width, iscrowd 2, ...): it opens the images,
// eval never does.
#include <string>
#include <string_view>

#include "data/coco_dataset.h"

namespace focaldet::eval {

// Reads a COCO instances json for evaluation. Read: images[].id; categories[].id and name
// (optional); annotations[].id, image_id, category_id, bbox (4 finite numbers), area (optional,
// w * h when absent), iscrowd (optional: any non-zero integer or true is crowd, as pycocotools
// tests it for truth; null or absent is not). Everything else (file_name, width, height,
// segmentation, ...) is not looked at. Annotations of images or categories that are not listed
// are kept: evaluate() leaves them out, as getAnnIds does. Filled: path, images (id only),
// categories, annotations; not the training indices (image_index, category_to_contiguous, ...).
// Throws focaldet::Error naming the file and the entry (section[index], id) for what evaluation
// cannot do without: a missing or mistyped id/bbox, a duplicate annotation id (pycocotools
// would silently evaluate one of the two twice), and for malformed json (line, column, byte).
// A UTF-8 byte order mark at the start is skipped.
data::CocoDataset read_ground_truth(const std::string& json_path);

// The same from text in memory; `name` stands for the file in messages.
data::CocoDataset parse_ground_truth(std::string_view json_text, const std::string& name);

}  // namespace focaldet::eval
