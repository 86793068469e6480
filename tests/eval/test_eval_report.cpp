// The report printed by `focaldet eval` and the metrics json written with --json.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "eval/coco_eval.h"
#include "eval/eval_report.h"
#include "eval_test_util.h"
#include "support/oracle.h"

namespace focaldet::test {
namespace {

// Category 1 found perfectly, category 2 has no ground truth.
eval::CocoEvalResult small_result() {
  GtBuilder gt({1}, {2, 1});
  gt.add(1, 1, {0, 0, 10, 10});
  return eval::evaluate(gt.ds, {det(1, 1, {0, 0, 10, 10}, 0.9)});
}

TEST(EvalReport, SummaryLinesFollowPycocotoolsFormat) {
  const auto lines = eval::summary_lines(small_result());
  ASSERT_EQ(lines.size(), 12u);
  EXPECT_EQ(lines[0],
            " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 1.000");
  EXPECT_EQ(lines[4],
            " Average Precision  (AP) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ] = -1.000");
  EXPECT_EQ(lines[6],
            " Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ] = 1.000");
}

TEST(EvalReport, TableHasOneRowPerCategory) {
  const std::string report = eval::format_report(small_result());
  // Rows in ascending id order after the 12 summary lines and the header: name, AP, AP50.
  std::istringstream in(report);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 16u) << report;
  EXPECT_EQ(lines[12], "");
  std::istringstream row1(lines[14]);
  std::string name, ap, ap50;
  row1 >> name >> ap >> ap50;
  EXPECT_EQ(name, "c1");
  EXPECT_EQ(ap, "1.000");
  EXPECT_EQ(ap50, "1.000");
  EXPECT_EQ(lines[15].rfind("c2", 0), 0u) << lines[15];
  EXPECT_NE(lines[15].find("no ground truth"), std::string::npos) << lines[15];
}

TEST(EvalReport, MetricsJsonHasStatsByNameAndApPerCategoryId) {
  const std::string dir = make_temp_dir("focaldet_metrics_");
  const std::string path = dir + "/metrics.json";
  eval::write_metrics_json(path, small_result());
  std::ifstream in(path);
  const auto j = nlohmann::json::parse(in);
  for (const char* name : {"AP", "AP50", "AP75", "APs", "AR1", "AR10", "AR100", "ARs"}) {
    EXPECT_NEAR(j.at(name).get<double>(), 1.0, 1e-12) << name;
  }
  for (const char* name : {"APm", "APl", "ARm", "ARl"}) {
    EXPECT_NEAR(j.at(name).get<double>(), -1.0, 1e-12) << name;
  }
  EXPECT_NEAR(j.at("AP_per_category").at("1").get<double>(), 1.0, 1e-12);
  EXPECT_NEAR(j.at("AP_per_category").at("2").get<double>(), -1.0, 1e-12);
  EXPECT_NEAR(j.at("AP50_per_category").at("1").get<double>(), 1.0, 1e-12);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace focaldet::test
