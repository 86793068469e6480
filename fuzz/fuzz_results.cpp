// Fuzz target `results`: the COCO results (detections) reader of `focaldet eval`
// (eval::parse_results, the body of read_results), then what eval does with its output: the
// evaluator against a small fixed ground truth, and write_results, whose file must read back
// to the same detections. A valid input is also read again padded past 4 MB, where the reader
// parses two halves on two threads: the result must be the same.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "data/coco_dataset.h"
#include "eval/coco_eval.h"
#include "eval/ground_truth_json.h"
#include "eval/results_json.h"
#include "fuzz_util.h"

namespace focaldet::fuzz {
namespace {

// Three images, three categories (3 has no ground truth), boxes in every area range, a crowd
// region. fuzz/corpus/results/ holds detections of these ids.
constexpr const char* kGroundTruth = R"({
  "images": [{"id": 1}, {"id": 2}, {"id": 3}],
  "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}, {"id": 3, "name": "c"}],
  "annotations": [
    {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20]},
    {"id": 2, "image_id": 1, "category_id": 1, "bbox": [50, 50, 60, 40]},
    {"id": 3, "image_id": 1, "category_id": 2, "bbox": [0, 0, 200, 150]},
    {"id": 4, "image_id": 2, "category_id": 2, "bbox": [5, 5, 4, 4], "area": 16},
    {"id": 5, "image_id": 2, "category_id": 1, "bbox": [0, 0, 100, 100], "iscrowd": 1},
    {"id": 6, "image_id": 3, "category_id": 1, "bbox": [30, 40, 120, 90]}
  ]
})";

const data::CocoDataset& ground_truth() {
  static const data::CocoDataset gt = eval::parse_ground_truth(kGroundTruth, "fixed_gt.json");
  return gt;
}

bool same(const std::vector<eval::Detection>& a, const std::vector<eval::Detection>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].image_id != b[i].image_id || a[i].category_id != b[i].category_id ||
        a[i].x != b[i].x || a[i].y != b[i].y || a[i].w != b[i].w || a[i].h != b[i].h ||
        a[i].score != b[i].score) {
      return false;
    }
  }
  return true;
}

void check_stat(double v, const std::string& what) {
  FUZZ_CHECK(v == -1 || (v >= 0 && v <= 1), what + " = " + std::to_string(v));
}

constexpr std::size_t kPadded = (std::size_t(4) << 20) + 64;  // past the two-thread size

}  // namespace
}  // namespace focaldet::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  focaldet::fuzz::quiet_logging();
  focaldet::fuzz::ground_truth();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace focaldet;
  using namespace focaldet::fuzz;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  std::vector<eval::Detection> dets;
  if (!run_reader("parse_results", [&] { dets = eval::parse_results(text, "dets.json", 1); })) {
    return 0;
  }
  for (const eval::Detection& d : dets) {
    FUZZ_CHECK(std::isfinite(d.x) && std::isfinite(d.y) && std::isfinite(d.w) &&
                   std::isfinite(d.h) && std::isfinite(d.score),
               "non-finite number accepted");
  }

  // The same list, whitespace around it to past 4 MB: read on two threads, then on one.
  if (size < kPadded / 2) {
    // A byte order mark stays in front: the reader skips it only there.
    const std::size_t bom = text.substr(0, 3) == "\xEF\xBB\xBF" ? 3 : 0;
    const std::size_t pad = (kPadded - size) / 2;
    const std::string padded = std::string(text.substr(0, bom)) + std::string(pad, ' ') +
                               std::string(text.substr(bom)) + std::string(pad, '\n');
    std::vector<eval::Detection> two;
    FUZZ_CHECK(run_reader("parse_results (2 threads)",
                          [&] { two = eval::parse_results(padded, "dets.json", 2); }),
               "the padded text does not read on two threads");
    FUZZ_CHECK(same(dets, two), "two threads read other detections than one");
  }

  // write_results' file reads back to the same detections.
  const std::string path = (scratch_dir() / "dets.json").string();
  FUZZ_CHECK(run_reader("write_results", [&] { eval::write_results(path, dets); }),
             "write_results refused detections that parse_results returned");
  std::vector<eval::Detection> back;
  FUZZ_CHECK(run_reader("read_results", [&] { back = eval::read_results(path, 1); }),
             "write_results wrote a file read_results refuses");
  FUZZ_CHECK(same(dets, back), "write_results does not read back to the same detections");

  eval::EvalOptions options;
  options.num_threads = 1;
  eval::CocoEvalResult result;
  if (!run_reader("evaluate", [&] { result = eval::evaluate(ground_truth(), dets, options); })) {
    return 0;
  }
  for (std::size_t i = 0; i < result.stats.size(); ++i) {
    check_stat(result.stats[i], eval::kStatNames[i]);
  }
  for (double ap : result.ap) check_stat(ap, "AP of a category");
  return 0;
}
