#pragma once
// A COCO "instances" file in memory: images, categories and annotations as plain structs.
// Contract shared by data/ (training), eval/ (ground truth) and cli/ (convert): field names here
// are stable; the reader's implementation lives in coco_dataset.cpp. No torch in this header.
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace focaldet::data {

struct CocoImage {
  int64_t id = 0;
  std::string file_name;  // relative to the image root; never absolute, never escapes it
  int width = 0;
  int height = 0;
};

struct CocoCategory {
  int64_t id = 0;  // as in the file: may be non-contiguous and unordered
  std::string name;
};

struct CocoAnnotation {
  int64_t id = 0;
  int64_t image_id = 0;
  int64_t category_id = 0;
  double x = 0, y = 0, w = 0, h = 0;  // "bbox": [x, y, width, height] in pixels
  double area = 0;                    // "area" (pycocotools' area ranges use it); w*h when absent
  bool iscrowd = false;               // crowd regions: ignore regions, never regular boxes
};

struct CocoReadOptions {
  // Training (true): boxes outside the image are clipped to it, boxes with zero or negative
  // width/height are dropped (one summary warning with the count). Evaluation (false): boxes are
  // kept exactly as written, as pycocotools keeps them; non-finite numbers are an error in both.
  bool sanitize_boxes = true;
  // When non-empty, every image file must exist under this folder (checked at start-up; the
  // error names the first few missing ones).
  std::string image_root;
  // Drop images that have no (non-crowd) annotation left after sanitising, together with their
  // crowd regions. Off by default: such images are background-only samples for training.
  bool drop_empty_images = false;
};

struct CocoDataset {
  std::string path;                         // the json it was read from (for messages)
  std::vector<CocoImage> images;            // in file order
  std::vector<CocoCategory> categories;     // in file order
  std::vector<CocoAnnotation> annotations;  // in file order (after sanitising, if asked)
  std::unordered_map<int64_t, std::size_t> image_index;        // image id -> index in images
  std::unordered_map<int64_t, int> category_to_contiguous;     // category id -> training index
  std::vector<int64_t> contiguous_to_category;                 // training index -> category id
                                                               // (ascending id order)
  std::vector<std::vector<std::size_t>> annotations_of_image;  // per images[i]: annotation idx
  int64_t num_clipped = 0;               // boxes clipped to their image (sanitize_boxes)
  int64_t num_dropped = 0;               // boxes dropped for zero/negative size (sanitize_boxes)
  int64_t num_empty_images_dropped = 0;  // images removed by drop_empty_images
};

// Reads and validates a COCO instances json. Throws focaldet::Error naming the file and the
// offending entry (and the parser's byte offset for malformed JSON).
CocoDataset read_coco(const std::string& json_path, const CocoReadOptions& options = {});

// The same from JSON text already in memory; `name` stands for the file in messages (and in
// CocoDataset::path). Relative image paths are still checked against options.image_root.
CocoDataset parse_coco(std::string_view json_text, const std::string& name,
                       const CocoReadOptions& options = {});

}  // namespace focaldet::data
