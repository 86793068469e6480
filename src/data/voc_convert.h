#pragma once
// Pascal VOC (Annotations/*.xml, ImageSets/Main/<split>.txt) to COCO instances json, one file
// per split. Boxes follow the usual rule (data/bccd/README.md): VOC corners are 1-based
// inclusive pixels, so x = xmin - 1, y = ymin - 1, w = xmax - xmin + 1, h = ymax - ymin + 1,
// area = w * h, iscrowd = 0. Image ids are 1.. in the split list's order, annotation ids 1.. in
// the order of the objects, image by image. Objects marked <difficult> are kept as ordinary
// boxes (detectron2's VOC loader does the same: they do not hurt training).
#include <string>
#include <vector>

namespace focaldet::data {

struct VocConvertOptions {
  // Category names; ids are 1.. in this order. Empty: the most frequent class first (ties by
  // name), counted over every image of the converted splits, which reproduces BCCD's shipped
  // ids (RBC 1, WBC 2, Platelets 3). Pass the list to fix ids across datasets.
  std::vector<std::string> categories;
  // Splits to convert (names of ImageSets/Main/<split>.txt). Empty: every list there whose name
  // has no '_' (VOC's per-class lists such as cat_train.txt are skipped).
  std::vector<std::string> splits;
};

struct VocSplitSummary {
  std::string split;
  std::string path;  // the json written: OUT_DIR/instances_<split>.json
  std::size_t num_images = 0;
  std::size_t num_annotations = 0;
};

// Converts `voc_root` into OUT_DIR/instances_<split>.json for each split (each written
// atomically: temp file + rename). Throws focaldet::Error naming the file (and line or object)
// for bad input; nothing is written unless every split converts.
std::vector<VocSplitSummary> convert_voc(const std::string& voc_root, const std::string& out_dir,
                                         const VocConvertOptions& options = {});

}  // namespace focaldet::data
