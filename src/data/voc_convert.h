#pragma once
// Pascal VOC (Annotations/*.xml, ImageSets/Main/<split>.txt) to COCO instances json, one file
// per split. Boxes follow the usual rule (data/bccd/README.md): VOC corners are 1-based
// inclusive pixels, so x = xmin - 1, y = ymin - 1, w = xmax - xmin + 1, h = ymax - ymin + 1,
// area = w * h, iscrowd = 0 (1 for difficult objects, below). Image ids are 1.. in the split
// list's order, annotation ids 1.. in the order of the objects, image by image.
//
// Objects marked <difficult>1</difficult> become iscrowd 1 by default. COCO has no
// "difficult"; VOC's evaluation neither counts them as objects to find nor counts a detection
// of one as a false positive, and iscrowd 1 gives that in both of focaldet's stages: the COCO
// evaluation ignores detections on a crowd region (matched by intersection over the
// detection's area, where VOC uses IoU), and training makes the anchors over it neither
// positives nor negatives (assign/assign_result.h). mmdetection's VOC->COCO converter
// (tools/dataset_converters/pascal_voc.py) writes them the same way. difficult_as_boxes keeps
// them as ordinary boxes instead (iscrowd 0), as detectron2 trains on them ("they don't hurt
// accuracy"); then they also count in evaluation, unlike VOC's. Numbers in the xml must be
// plain decimals within +-1e9; <filename> follows read_coco's rule (data/image_path.h).
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
  // false: <difficult> objects are written with iscrowd 1 (ignored, as in VOC's evaluation);
  // true: as ordinary boxes, iscrowd 0 (detectron2 trains on them). See the top of this file.
  bool difficult_as_boxes = false;
};

struct VocSplitSummary {
  std::string split;
  std::string path;  // the json written: OUT_DIR/instances_<split>.json
  std::size_t num_images = 0;
  std::size_t num_annotations = 0;  // every object, difficult ones included
  std::size_t num_difficult = 0;    // objects marked <difficult>1</difficult>
};

// Converts `voc_root` into OUT_DIR/instances_<split>.json for each split (each written
// atomically: temp file + rename). Throws focaldet::Error naming the file (and line or object)
// for bad input; nothing is written unless every split converts.
std::vector<VocSplitSummary> convert_voc(const std::string& voc_root, const std::string& out_dir,
                                         const VocConvertOptions& options = {});

}  // namespace focaldet::data
