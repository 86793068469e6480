// `focaldet analyze-loss` end to end on configs/smoke.yaml: a 2-iteration run is trained into a
// temp dir, then the analysis writes its CSVs (curves that rise to 1), the Markdown table (also
// on stdout) and a PNG of the right size; bad input exits with status 2 and names the problem.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "data/run_focaldet.h"
#include "report/loss_distribution.h"
#include "report/plot.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using focaldet::test::run_focaldet;
using focaldet::test::TempDir;

namespace {

std::vector<std::vector<std::string>> read_csv(const std::string& path) {
  std::vector<std::vector<std::string>> rows;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> cells;
    std::istringstream fields(line);
    for (std::string cell; std::getline(fields, cell, ',');) cells.push_back(cell);
    rows.push_back(cells);
  }
  return rows;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

uint32_t big_endian_u32(const std::string& bytes, size_t offset) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(bytes[offset + i]);
  return v;
}

// One trained smoke run for all tests of this file (training is the slow part).
class AnalyzeLossCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = std::make_unique<TempDir>();
    std::string out;
    train_status_ = run_focaldet(
        "train configs/smoke.yaml --run-dir " + run() + " --set train.max_iters=2 --set data.val=",
        &out);
    train_output_ = out;
  }
  static void TearDownTestSuite() { tmp_.reset(); }
  void SetUp() override {
    ASSERT_EQ(train_status_, 0) << train_output_;
    ASSERT_TRUE(fs::exists(checkpoint())) << train_output_;
  }

  static std::string run() { return *tmp_ / "run"; }
  static std::string checkpoint() { return run() + "/checkpoints/last.pt"; }
  // analyze-loss on the smoke config's val split (its first images: quick).
  static std::string analyze(const std::string& extra) {
    return "analyze-loss configs/smoke.yaml --checkpoint " + checkpoint() + " --max-images 4 " +
           extra;
  }
  static std::string temp(const std::string& name) { return *tmp_ / name; }

  static std::unique_ptr<TempDir> tmp_;
  static int train_status_;
  static std::string train_output_;
};

std::unique_ptr<TempDir> AnalyzeLossCli::tmp_;
int AnalyzeLossCli::train_status_ = -1;
std::string AnalyzeLossCli::train_output_;

}  // namespace

TEST_F(AnalyzeLossCli, WritesCurvesSharesAndAPlot) {
  const std::string out_dir = temp("analysis");
  std::string out;
  ASSERT_EQ(run_focaldet(analyze("--split val --gammas 0,1,2 --out " + out_dir), &out), 0) << out;

  // cumulative_loss.csv: per gamma and group, the curve at every sampled fraction, rising
  // from 0 to 1.
  const auto curves = read_csv(out_dir + "/cumulative_loss.csv");
  ASSERT_FALSE(curves.empty());
  EXPECT_EQ(curves[0], (std::vector<std::string>{"gamma", "group", "fraction", "cumulative_loss"}));
  std::map<std::pair<std::string, std::string>, std::vector<std::pair<double, double>>> by_curve;
  for (size_t i = 1; i < curves.size(); ++i) {
    ASSERT_EQ(curves[i].size(), 4u) << "line " << i + 1;
    by_curve[{curves[i][0], curves[i][1]}].emplace_back(std::stod(curves[i][2]),
                                                        std::stod(curves[i][3]));
  }
  EXPECT_EQ(by_curve.size(), 6u);  // 3 gammas x (positive, negative)
  const size_t points = focaldet::report::curve_fractions().size();
  for (const auto& [key, curve] : by_curve) {
    SCOPED_TRACE("gamma " + key.first + ", " + key.second);
    ASSERT_EQ(curve.size(), points);
    EXPECT_EQ(curve.front().first, 0.0);
    EXPECT_EQ(curve.front().second, 0.0);
    EXPECT_EQ(curve.back().first, 1.0);
    EXPECT_NEAR(curve.back().second, 1.0, 1e-9);  // written with 10 significant digits
    for (size_t k = 1; k < curve.size(); ++k) {
      EXPECT_GT(curve[k].first, curve[k - 1].first);
      EXPECT_GE(curve[k].second, curve[k - 1].second);
    }
  }

  // loss_shares.csv: one row per gamma, counts > 0, shares in [0, 1].
  const auto shares = read_csv(out_dir + "/loss_shares.csv");
  ASSERT_EQ(shares.size(), 4u);
  EXPECT_EQ(shares[0],
            (std::vector<std::string>{"gamma", "num_pos", "num_neg", "neg_hardest_1pct",
                                      "neg_hardest_5pct", "neg_hardest_10pct", "neg_hardest_20pct",
                                      "easy_neg_share", "pos_fraction_for_half_loss"}));
  const char* gammas[] = {"0", "1", "2"};
  for (size_t r = 1; r < shares.size(); ++r) {
    ASSERT_EQ(shares[r].size(), 9u);
    EXPECT_EQ(shares[r][0], gammas[r - 1]);
    EXPECT_GT(std::stoll(shares[r][1]), 0);
    EXPECT_GT(std::stoll(shares[r][2]), std::stoll(shares[r][1]));  // far more negatives
    for (size_t c = 3; c < 9; ++c) {
      const double v = std::stod(shares[r][c]);
      EXPECT_GE(v, 0.0) << shares[0][c];
      EXPECT_LE(v, 1.0) << shares[0][c];
    }
    // A larger fraction of the hardest carries at least as much.
    EXPECT_LE(std::stod(shares[r][3]), std::stod(shares[r][4]));
    EXPECT_LE(std::stod(shares[r][5]), std::stod(shares[r][6]));
  }

  // loss_shares.md: a sentence and the table; the same goes to stdout.
  const std::string md = read_file(out_dir + "/loss_shares.md");
  EXPECT_NE(md.find("| gamma |"), std::string::npos) << md;
  EXPECT_NE(out.find(md), std::string::npos) << out;

  // cumulative_loss.png: a PNG of the figure's size (1280 x 560), or, without gnuplot, a warning.
  const std::string png_path = out_dir + "/cumulative_loss.png";
  if (!focaldet::report::plotting_available()) {
    EXPECT_FALSE(fs::exists(png_path));
    EXPECT_NE(out.find("gnuplot"), std::string::npos) << out;
    return;
  }
  const std::string png = read_file(png_path);
  ASSERT_GE(png.size(), 24u);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(png.substr(12, 4), "IHDR");
  EXPECT_EQ(big_endian_u32(png, 16), 1280u);
  EXPECT_EQ(big_endian_u32(png, 20), 560u);
  for (const auto& e : fs::directory_iterator(out_dir))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
}

TEST_F(AnalyzeLossCli, WritesIntoTheRunDirByDefault) {
  std::string out;
  ASSERT_EQ(run_focaldet(analyze("--gammas 2"), &out), 0) << out;
  for (const char* f : {"cumulative_loss.csv", "loss_shares.csv", "loss_shares.md"})
    EXPECT_TRUE(fs::exists(run() + "/analyze_loss/" + f)) << f;
}

// Acceptance: bad input gives a clear message and exit code 2, never a crash.
TEST_F(AnalyzeLossCli, BadInputExitsWithStatusTwoAndNamesTheProblem) {
  const std::string junk = tmp_->write("junk.pt", "not a checkpoint");
  const struct {
    std::string args, message;
  } cases[] = {
      {"analyze-loss configs/smoke.yaml --checkpoint " + temp("missing.pt"), "missing.pt"},
      {"analyze-loss configs/smoke.yaml --checkpoint " + junk, "junk.pt"},
      {analyze("--gammas a,2"), "'a' is not a number"},
      {analyze("--gammas -1"), "-1 is negative"},
      {analyze("--gammas=0,-0.5"), "-0.5 is negative"},
      {analyze("--gammas 1,"), "--gammas"},
      {analyze("--split val --set data.val="), "data.val"},
      {analyze("--split dev"), "unknown split 'dev'"},
      {"analyze-loss configs/smoke.yaml --checkpoint " + checkpoint() + " --max-images -1",
       "--max-images"},
      {analyze("--set loss.cls=softmax_focal"), "softmax_focal"},
  };
  for (const auto& c : cases) {
    std::string out;
    EXPECT_EQ(run_focaldet(c.args, &out), 2) << c.args << "\n" << out;
    EXPECT_NE(out.find(c.message), std::string::npos) << c.args << "\n" << out;
  }
}
