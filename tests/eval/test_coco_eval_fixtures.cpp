// pycocotools' own output on three ground-truth/detection pairs (fixtures/expected.json, made
// by cocoapi's COCOeval): the 12 stats, AP per category id and the printed summary.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "data/coco_dataset.h"
#include "eval/coco_eval.h"
#include "eval/eval_report.h"
#include "eval/results_json.h"
#include "support/oracle.h"

namespace focaldet::test {
namespace {

// expected.json holds pycocotools' numbers rounded to 6 decimals: half a unit of rounding
// plus double noise.
constexpr double kStatTol = 5e-7 + 1e-12;

nlohmann::json expected_for(const std::string& name) {
  std::ifstream in(source_path("tests/eval/fixtures/expected.json"));
  if (!in) throw std::runtime_error("missing tests/eval/fixtures/expected.json");
  return nlohmann::json::parse(in).at(name);
}

eval::CocoEvalResult run_fixture(const std::string& name) {
  data::CocoReadOptions options;
  options.sanitize_boxes = false;
  const data::CocoDataset gt =
      data::read_coco(source_path("tests/eval/fixtures/" + name + ".gt.json"), options);
  const auto dets = eval::read_results(source_path("tests/eval/fixtures/" + name + ".dets.json"));
  return eval::evaluate(gt, dets);
}

class CocoEvalFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(CocoEvalFixture, StatsMatchPycocotools) {
  const auto want = expected_for(GetParam());
  const auto got = run_fixture(GetParam());
  ASSERT_EQ(want.at("stats").size(), 12u);
  for (int n = 0; n < 12; ++n) {
    EXPECT_NEAR(got.stats[n], want.at("stats")[n].get<double>(), kStatTol) << eval::kStatNames[n];
  }
}

TEST_P(CocoEvalFixture, PerCategoryApMatchesPycocotools) {
  const auto want = expected_for(GetParam()).at("per_class_AP");
  const auto got = run_fixture(GetParam());
  ASSERT_EQ(got.category_ids.size(), want.size());
  for (std::size_t k = 0; k < got.category_ids.size(); ++k) {
    const std::string id = std::to_string(got.category_ids[k]);
    ASSERT_TRUE(want.contains(id)) << "category " << id;
    EXPECT_NEAR(got.ap[k], want.at(id).get<double>(), kStatTol) << "category " << id;
  }
}

TEST_P(CocoEvalFixture, SummaryTextIsPycocotoolsExactly) {
  const auto want = expected_for(GetParam()).at("summary");
  const auto lines = eval::summary_lines(run_fixture(GetParam()));
  ASSERT_EQ(lines.size(), want.size());
  for (std::size_t n = 0; n < lines.size(); ++n) EXPECT_EQ(lines[n], want[n].get<std::string>());
  // The report starts with the same lines.
  std::string expected_head;
  for (const auto& line : want) expected_head += line.get<std::string>() + "\n";
  const std::string report = eval::format_report(run_fixture(GetParam()));
  EXPECT_EQ(report.substr(0, expected_head.size()), expected_head);
}

INSTANTIATE_TEST_SUITE_P(Pycocotools, CocoEvalFixture,
                         ::testing::Values("plain", "many_ties", "crowd_remap"));

}  // namespace
}  // namespace focaldet::test
