// evaluate()'s memory follows the boxes, not categories x images (issue 10, finding 5): a ground
// truth listing 20,000 categories took 1.9 GB in pycocotools-shaped tables (precision
// [T, R, K, A, M] is 12,120 doubles per category, plus offsets per (category, image) pair).
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "eval/coco_eval.h"
#include "eval_test_util.h"

namespace focaldet::test {
namespace {

// A field of /proc/self/status in kB (VmRSS: resident now, VmHWM: peak resident), -1 when absent.
int64_t status_kb(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1));
  }
  return -1;
}

// Writing 5 to clear_refs resets VmHWM to the current VmRSS (Linux >= 4.0), so the peak read
// afterwards is this evaluation's, not that of a test that ran before it.
bool reset_peak_rss() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

TEST(CocoEvalMemory, PeakFollowsBoxesNotCategoriesTimesImages) {
  constexpr int kCategories = 20000, kImages = 2000;
  data::CocoDataset gt;
  for (int64_t i = 1; i <= kImages; ++i) gt.images.push_back({i, "i.jpg", 640, 480});
  for (int64_t c = 1; c <= kCategories; ++c) gt.categories.push_back({c, "c"});
  // Six boxes in three categories over far-apart images, each found exactly, and a false
  // positive in a category without ground truth.
  GtBuilder boxes({}, {});
  const int64_t with_gt[3] = {1, 9999, 20000};
  for (int n = 0; n < 6; ++n) boxes.add(1 + n * 399, with_gt[n % 3], {10.0 * n, 20, 40, 30});
  gt.annotations = boxes.ds.annotations;
  std::vector<eval::Detection> dets;
  for (const auto& a : gt.annotations)
    dets.push_back(det(a.image_id, a.category_id, {a.x, a.y, a.w, a.h}, 0.9));
  dets.push_back(det(kImages, 5000, {0, 0, 50, 50}, 0.8));

  ASSERT_TRUE(reset_peak_rss()) << "cannot reset the peak RSS through /proc/self/clear_refs";
  const int64_t rss_before = status_kb("VmRSS");
  ASSERT_GT(rss_before, 0) << "no VmRSS in /proc/self/status";
  const eval::CocoEvalResult r = eval::evaluate(gt, dets);
  const int64_t growth_kb = status_kb("VmHWM") - rss_before;
  RecordProperty("peak_rss_growth_kb", std::to_string(growth_kb));

  // Tables by category x image or dense per-category curves would take > 2 GB here; the boxes
  // and per-category ids, names and APs take about 2 MB. 64 MB leaves room for the allocator
  // and sanitizer builds.
  EXPECT_LT(growth_kb, 64 * 1024) << "peak RSS grew by " << growth_kb << " kB";

  ASSERT_EQ(r.ap.size(), static_cast<std::size_t>(kCategories));
  // Results are exact fractions here (1 or -1).
  EXPECT_DOUBLE_EQ(r.stats[0], 1.0);
  EXPECT_DOUBLE_EQ(r.ap[0], 1.0);
  EXPECT_DOUBLE_EQ(r.ap[9998], 1.0);
  EXPECT_DOUBLE_EQ(r.ap[19999], 1.0);
  EXPECT_DOUBLE_EQ(r.ap[4999], -1.0);  // detections only: left out of the mean
  EXPECT_DOUBLE_EQ(r.precision_at(0, 100, 19999, 0, 2), 1.0);
  EXPECT_DOUBLE_EQ(r.precision_at(0, 0, 4999, 0, 2), -1.0);
}

}  // namespace
}  // namespace focaldet::test
