// Fuzz target `ground_truth`: the lenient ground-truth reader of `focaldet eval`
// (eval::parse_ground_truth, the body of read_ground_truth), then the evaluator on what it read,
// with the ground truth's own boxes as detections. Checks: a file the strict training reader
// takes (boxes as written) reads the same here, since evaluation must take every file training
// takes; annotation ids are unique; the 12 stats are -1 or in [0, 1].
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "data/coco_dataset.h"
#include "eval/coco_eval.h"
#include "eval/ground_truth_json.h"
#include "fuzz_util.h"

namespace focaldet::fuzz {
namespace {

bool same_double(double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); }

// What evaluation reads of a file must be what the strict reader read of it.
void check_same_as_strict(const data::CocoDataset& lenient, const data::CocoDataset& strict) {
  FUZZ_CHECK(lenient.images.size() == strict.images.size(), "images differ from read_coco's");
  for (std::size_t i = 0; i < strict.images.size(); ++i) {
    FUZZ_CHECK(lenient.images[i].id == strict.images[i].id, "image ids differ from read_coco's");
  }
  FUZZ_CHECK(lenient.categories.size() == strict.categories.size(), "categories differ");
  for (std::size_t i = 0; i < strict.categories.size(); ++i) {
    FUZZ_CHECK(lenient.categories[i].id == strict.categories[i].id &&
                   lenient.categories[i].name == strict.categories[i].name,
               "a category differs from read_coco's");
  }
  FUZZ_CHECK(lenient.annotations.size() == strict.annotations.size(), "annotations differ");
  for (std::size_t i = 0; i < strict.annotations.size(); ++i) {
    const data::CocoAnnotation &a = lenient.annotations[i], &b = strict.annotations[i];
    FUZZ_CHECK(a.id == b.id && a.image_id == b.image_id && a.category_id == b.category_id &&
                   same_double(a.x, b.x) && same_double(a.y, b.y) && same_double(a.w, b.w) &&
                   same_double(a.h, b.h) && same_double(a.area, b.area) && a.iscrowd == b.iscrowd,
               "annotation " + std::to_string(i) + " differs from read_coco's");
  }
}

void check_stat(double v, const std::string& what) {
  FUZZ_CHECK(v == -1 || (v >= 0 && v <= 1), what + " = " + std::to_string(v));
}

}  // namespace
}  // namespace focaldet::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  focaldet::fuzz::quiet_logging();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace focaldet;
  using namespace focaldet::fuzz;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  data::CocoDataset gt;
  if (!run_reader("parse_ground_truth", [&] { gt = eval::parse_ground_truth(text, "gt.json"); })) {
    data::CocoReadOptions as_written;
    as_written.sanitize_boxes = false;
    const bool strict_ok =
        run_reader("parse_coco", [&] { (void)data::parse_coco(text, "gt.json", as_written); });
    FUZZ_CHECK(!strict_ok, "read_coco takes a file that read_ground_truth refuses");
    return 0;
  }
  std::unordered_set<int64_t> ids;
  for (const data::CocoAnnotation& a : gt.annotations) {
    FUZZ_CHECK(ids.insert(a.id).second, "duplicate annotation id accepted");
    FUZZ_CHECK(std::isfinite(a.x) && std::isfinite(a.y) && std::isfinite(a.w) &&
                   std::isfinite(a.h) && !std::isnan(a.area),
               "non-finite box accepted");
  }
  data::CocoReadOptions as_written;
  as_written.sanitize_boxes = false;
  data::CocoDataset strict;
  if (run_reader("parse_coco", [&] { strict = data::parse_coco(text, "gt.json", as_written); })) {
    check_same_as_strict(gt, strict);
  }

  // The ground truth's own boxes as detections, of listed images only (evaluate refuses
  // others), with scores that tie and differ.
  std::unordered_set<int64_t> listed;
  for (const data::CocoImage& image : gt.images) listed.insert(image.id);
  std::vector<eval::Detection> detections;
  for (const data::CocoAnnotation& a : gt.annotations) {
    if (listed.count(a.image_id) == 0) continue;
    detections.push_back(
        {a.image_id, a.category_id, a.x, a.y, a.w, a.h, static_cast<double>(a.id % 7) / 7.0});
  }
  eval::EvalOptions options;
  options.num_threads = 1;
  eval::CocoEvalResult result;
  if (!run_reader("evaluate", [&] { result = eval::evaluate(gt, detections, options); })) {
    return 0;
  }
  for (std::size_t i = 0; i < result.stats.size(); ++i) {
    check_stat(result.stats[i], eval::kStatNames[i]);
  }
  for (double ap : result.ap) check_stat(ap, "AP of a category");
  for (double ap : result.ap50) check_stat(ap, "AP50 of a category");
  return 0;
}
