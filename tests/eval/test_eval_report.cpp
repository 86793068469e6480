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

// A ground truth file names its categories: a name must not forge report lines or send
// terminal escapes, and one long name must not pad every row to its length.
TEST(EvalReport, CategoryNamesAreEscapedAndCut) {
  eval::CocoEvalResult r = small_result();  // categories 1 and 2
  r.category_names[0] = "x\x1b[31mred\n Average Precision  (AP) forged\r\tq\xC2\x9b\\";
  r.category_names[1] = std::string(5000, 'n');
  const std::string report = eval::format_report(r);
  EXPECT_EQ(report.find('\x1b'), std::string::npos);
  EXPECT_EQ(report.find('\r'), std::string::npos);
  EXPECT_EQ(report.find('\t'), std::string::npos);
  EXPECT_EQ(report.find("\xC2\x9b"), std::string::npos);
  std::istringstream in(report);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 16u) << report;  // the newline in the name made no line of its own
  EXPECT_EQ(lines[14].rfind("x\\x1b[31mred\\n Average Precision", 0), 0u) << lines[14];
  // 40 columns of name at most, then AP and AP50 (16 characters).
  EXPECT_LE(lines[15].size(), 40u + 16u + 20u) << lines[15];
  EXPECT_EQ(lines[15].rfind(std::string(37, 'n') + "...", 0), 0u) << lines[15];
  for (std::size_t n = 13; n < lines.size(); ++n) EXPECT_LE(lines[n].size(), 80u) << lines[n];
}

TEST(EvalReport, EscapedNameKeepsBackslashesUnambiguous) {
  eval::CocoEvalResult r = small_result();
  r.category_names[0] = "a\\n";  // a backslash then 'n', not a newline
  const std::string report = eval::format_report(r);
  EXPECT_NE(report.find("a\\\\n "), std::string::npos) << report;
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
