// The comparison behind `focaldet compare`, on run directories written by hand: reading back
// with damage named, grouping of seeds, mean/spread and Welch's test against hand-computed
// values, curves of runs with other lengths and log intervals, the report's tables, and plots
// as PNG files of the stated size.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <iterator>

#include "common/error.h"
#include "report/compare.h"
#include "report/compare_report.h"
#include "report/plot.h"
#include "report/run_reader.h"
#include "synthetic_run.h"

using namespace focaldet;
using namespace focaldet::report;
using focaldet::test::SyntheticRun;
using focaldet::test::TempDir;
using focaldet::test::write_run;
using focaldet::test::num;

namespace {

// Three focal seeds with AP 0.49, 0.50, 0.51 and three CE seeds with AP 0.40, 0.42, 0.44.
std::vector<report::Run> focal_and_ce(const TempDir& dir) {
  std::vector<report::Run> runs;
  const double focal_ap[] = {0.49, 0.50, 0.51}, ce_ap[] = {0.40, 0.42, 0.44};
  for (int seed = 0; seed < 3; ++seed) {
    SyntheticRun f;
    f.seed = seed;
    f.ap = {focal_ap[seed]};
    runs.push_back(read_run(write_run(dir, "focal_s" + std::to_string(seed), f)));
  }
  for (int seed = 0; seed < 3; ++seed) {
    SyntheticRun c;
    c.name = "bccd_ce";
    c.cls = "ce";
    c.seed = seed;
    c.ap = {ce_ap[seed]};
    c.easy_neg_share = 0.4;
    runs.push_back(read_run(write_run(dir, "ce_s" + std::to_string(seed), c)));
  }
  return runs;
}

// Width and height from a PNG's IHDR chunk, after checking the signature; {0, 0} if not a PNG.
std::pair<int, int> png_size(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.size() < 33 || bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0 ||
      bytes.compare(12, 4, "IHDR") != 0)
    return {0, 0};
  auto be32 = [&](size_t at) {
    return (static_cast<unsigned char>(bytes[at]) << 24) |
           (static_cast<unsigned char>(bytes[at + 1]) << 16) |
           (static_cast<unsigned char>(bytes[at + 2]) << 8) | static_cast<unsigned char>(bytes[at + 3]);
  };
  return {static_cast<int>(be32(16)), static_cast<int>(be32(20))};
}

}  // namespace

TEST(RunReader, ReadsConfigLogAndEvals) {
  TempDir dir;
  SyntheticRun r;
  r.eval_iters = {10, 30};
  r.ap = {0.2, 0.5};
  const report::Run run = read_run(write_run(dir, "run", r));
  EXPECT_EQ(run.get("loss.cls"), "focal");
  EXPECT_EQ(run.get("data.shorter_sides"), "[320]");
  ASSERT_EQ(run.log.size(), 3u);
  EXPECT_DOUBLE_EQ(run.log[1].values.at("loss"), 0.8);
  ASSERT_EQ(run.evals.size(), 2u);
  EXPECT_DOUBLE_EQ(final_eval(run)->stats.at("AP"), 0.5);
  EXPECT_DOUBLE_EQ(final_eval(run)->ap_per_class.at("Platelets"), 0.6);
  EXPECT_TRUE(run.finished);
  EXPECT_EQ(run.last_iter, 30);
  EXPECT_TRUE(run.warnings.empty());
}

TEST(RunReader, CorruptLinesAreSkippedAndNamed) {
  TempDir dir;
  const std::string path = write_run(dir, "run", SyntheticRun{});
  {
    std::ofstream out(path + "/metrics.jsonl", std::ios::app);
    out << "{\"iter\":40,\"loss\":0.5\n"   // torn by a crash
        << "{\"loss\":0.5}\n";             // no iter
  }
  const report::Run run = read_run(path);
  EXPECT_EQ(run.log.size(), 3u);
  ASSERT_EQ(run.warnings.size(), 2u);
  EXPECT_NE(run.warnings[0].find("metrics.jsonl:4"), std::string::npos) << run.warnings[0];
  EXPECT_NE(run.warnings[1].find("metrics.jsonl:5"), std::string::npos) << run.warnings[1];
}

TEST(RunReader, FolderWithoutConfigIsNotARun) {
  TempDir dir;
  dir.write("notarun/notes.txt", "hello");
  try {
    read_run(dir / "notarun");
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a run directory"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("notarun"), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_run(dir / "missing"), Error);
}

TEST(Compare, SummaryIsMeanAndSampleStd) {
  const Summary s = summarize({1, 2, 3, std::nan("")});
  EXPECT_EQ(s.n, 3);
  EXPECT_DOUBLE_EQ(s.mean, 2);
  EXPECT_DOUBLE_EQ(s.std, 1);  // sqrt(((1-2)^2 + 0 + (3-2)^2) / (3-1))
  EXPECT_DOUBLE_EQ(s.min, 1);
  EXPECT_DOUBLE_EQ(s.max, 3);
}

TEST(Compare, WelchTestMatchesHandComputation) {
  // delta 3, each variance of the mean 1/3: t = 3 / sqrt(2/3) = 3.674, df = 4, critical 2.776.
  const Difference far = compare_means({1, 2, 3}, {4, 5, 6});
  EXPECT_NEAR(far.t, 3.0 / std::sqrt(2.0 / 3.0), 1e-12);
  EXPECT_NEAR(far.df, 4.0, 1e-12);
  EXPECT_TRUE(far.testable);
  EXPECT_TRUE(far.significant);
  // delta 0.5: t = 0.612 < 2.776.
  const Difference near = compare_means({1, 2, 3}, {1.5, 2.5, 3.5});
  EXPECT_FALSE(near.significant);
  EXPECT_NEAR(near.delta, 0.5, 1e-12);
  // df 4 (3 runs a side, equal spread): the critical t is 2.776. t = 2.2 / sqrt(2/3) = 2.694 is
  // within the spread; t = 2.3 / sqrt(2/3) = 2.817 is beyond it.
  EXPECT_FALSE(compare_means({1, 2, 3}, {3.2, 4.2, 5.2}).significant);
  EXPECT_TRUE(compare_means({1, 2, 3}, {3.3, 4.3, 5.3}).significant);
  // df 2 (2 runs a side): critical 4.303; t = 4 / sqrt(1/2 + 1/2) ... spread 1/sqrt(2) each.
  // a = {0, 1}, b = {4, 5}: variances 0.5, t = 4 / sqrt(0.25 + 0.25) = 5.657 > 4.303.
  EXPECT_TRUE(compare_means({0, 1}, {4, 5}).significant);
  // b = {3, 4}: t = 3 / sqrt(0.5) = 4.243 < 4.303.
  EXPECT_FALSE(compare_means({0, 1}, {3, 4}).significant);
  const Difference single = compare_means({1}, {2});
  EXPECT_FALSE(single.testable);
  EXPECT_FALSE(single.significant);
}

TEST(Compare, SeedsOfOneConfigFormAGroupNamedByTheRun) {
  TempDir dir;
  const Comparison c = build_comparison(focal_and_ce(dir));
  ASSERT_EQ(c.groups.size(), 2u);
  EXPECT_EQ(c.groups[0].label, "bccd_focal");
  EXPECT_EQ(c.groups[1].label, "bccd_ce");
  EXPECT_EQ(c.groups[0].runs.size(), 3u);
  EXPECT_EQ(c.differing_keys, std::vector<std::string>{"loss.cls"});
  const Summary focal = summarize(final_values(c.groups[0], "AP"));
  EXPECT_NEAR(focal.mean, 0.50, 1e-12);
  EXPECT_NEAR(focal.std, 0.01, 1e-12);
  const auto wbc = final_values(c.groups[1], "AP/WBC");
  ASSERT_EQ(wbc.size(), 3u);
  EXPECT_NEAR(wbc[2], 0.44, 1e-12);  // WBC is written as the run's AP
}

TEST(Compare, GroupsOfOneNameAreLabelledByTheKeysThatDiffer) {
  TempDir dir;
  std::vector<report::Run> runs;
  for (double gamma : {0.0, 2.0}) {
    SyntheticRun r;
    r.gamma = gamma;
    runs.push_back(read_run(write_run(dir, "g" + num(gamma), r)));
  }
  const Comparison c = build_comparison(std::move(runs));
  ASSERT_EQ(c.groups.size(), 2u);
  EXPECT_EQ(c.groups[0].label, "gamma=0");
  EXPECT_EQ(c.groups[1].label, "gamma=2");
}

TEST(Compare, GroupsSharingANameAddTheKeysThatTellThemApart) {
  TempDir dir;
  std::vector<report::Run> runs = focal_and_ce(dir);
  SyntheticRun longer;
  longer.alpha = 0.5;
  runs.push_back(read_run(write_run(dir, "focal_alpha", longer)));
  const Comparison c = build_comparison(std::move(runs));
  ASSERT_EQ(c.groups.size(), 3u);
  EXPECT_EQ(c.groups[0].label, "bccd_focal alpha=0.25");
  EXPECT_EQ(c.groups[1].label, "bccd_ce");
  EXPECT_EQ(c.groups[2].label, "bccd_focal alpha=0.5");
}

TEST(Compare, RunsOnOtherDataAreLeftOutAndNamed) {
  TempDir dir;
  std::vector<report::Run> runs = focal_and_ce(dir);
  SyntheticRun coco;
  coco.val = "/data/coco/instances_val2017.json";
  coco.classes = {"person", "car"};
  runs.push_back(read_run(write_run(dir, "coco_run", coco)));
  const Comparison c = build_comparison(std::move(runs));
  EXPECT_EQ(c.runs.size(), 6u);
  ASSERT_EQ(c.notes.size(), 1u);
  EXPECT_NE(c.notes[0].find("coco_run"), std::string::npos) << c.notes[0];
  EXPECT_NE(c.notes[0].find("other data"), std::string::npos) << c.notes[0];
}

TEST(Compare, RunsWithOtherClassNamesOnTheSameFileAreLeftOut) {
  TempDir dir;
  std::vector<report::Run> runs = focal_and_ce(dir);
  SyntheticRun relabelled;
  relabelled.classes = {"red", "white", "platelet"};
  runs.push_back(read_run(write_run(dir, "relabelled", relabelled)));
  const Comparison c = build_comparison(std::move(runs));
  EXPECT_EQ(c.runs.size(), 6u);
  ASSERT_EQ(c.notes.size(), 1u);
  EXPECT_NE(c.notes[0].find("relabelled: left out"), std::string::npos) << c.notes[0];
}

TEST(Compare, CurvesCombineRunsOfOtherLengthsAndIntervals) {
  TempDir dir;
  SyntheticRun a, b;
  a.log_iters = {10, 20, 30};
  a.loss = {1, 2, 3};
  b.seed = 1;
  b.log_iters = {15, 30};
  b.loss = {2, 4};
  const Comparison c = build_comparison(
      {read_run(write_run(dir, "a", a)), read_run(write_run(dir, "b", b))});
  ASSERT_EQ(c.groups.size(), 1u);
  const GroupCurve curve = group_curve(c.groups[0], "loss");
  ASSERT_EQ(curve.iter, (std::vector<double>{10, 15, 20, 30}));
  EXPECT_DOUBLE_EQ(curve.mean[0], 1);              // only a covers iteration 10
  EXPECT_DOUBLE_EQ(curve.mean[1], (1.5 + 2) / 2);  // a interpolated at 15
  EXPECT_NEAR(curve.mean[2], (2 + (2 + 2.0 / 3)) / 2, 1e-12);  // b interpolated at 20
  EXPECT_DOUBLE_EQ(curve.mean[3], 3.5);
  EXPECT_DOUBLE_EQ(curve.low[3], 3);
  EXPECT_DOUBLE_EQ(curve.high[3], 4);
  // Positives per image: num_pos over the batch size.
  EXPECT_DOUBLE_EQ(group_curve(c.groups[0], "pos_per_image").mean[0], 100);
}

// A data-parallel run logs the global batch's positives and its images per step (batch_size x
// ranks): positives per image divide by those images, not by the per-rank batch size.
TEST(Compare, PositivesPerImageUseTheLoggedImagesOfTheGlobalBatch) {
  TempDir dir;
  SyntheticRun r;
  r.num_pos = 1600;  // 2 ranks x batch 8, 100 positives per image
  r.images = 16;
  const Comparison c = build_comparison({read_run(write_run(dir, "two_ranks", r))});
  EXPECT_DOUBLE_EQ(group_curve(c.groups[0], "pos_per_image").mean[0], 100);
}

TEST(CompareReport, TablesShowMeanSpreadBestAndTheVerdict) {
  TempDir dir;
  const Comparison c = build_comparison(focal_and_ce(dir));
  const std::string md = markdown_report(c, ReportOptions{}, {});
  // AP: focal 0.500 ± 0.010 (best, bold), CE 0.420 ± 0.020.
  EXPECT_NE(md.find("| bccd_focal | 3 | **0.500 ± 0.010** | **0.800 ± 0.010** |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| bccd_ce | 3 | 0.420 ± 0.020 | 0.720 ± 0.020 |"), std::string::npos) << md;
  // CE - focal = -0.080; Welch t = -0.08 / sqrt(0.0001/3 + 0.0004/3) = -6.20, df 2.9:
  // beyond the spread (critical 4.303 at df 2).
  EXPECT_NE(md.find("| bccd_ce | -0.080 (beyond spread) |"), std::string::npos) << md;
  EXPECT_NE(md.find("0.080 below bccd_focal: more than the seed spread explains (t = -6.20)"),
            std::string::npos)
      << md;
  // The config key that differs, with the seeds.
  EXPECT_NE(md.find("| `loss.cls` | focal | ce |"), std::string::npos) << md;
  EXPECT_NE(md.find("| `run.seed` | 0, 1, 2 | 0, 1, 2 |"), std::string::npos) << md;
  // Loss composition at the last log step: positives 50%, easy negatives 2.0% vs 40.0%.
  EXPECT_NE(md.find("| bccd_focal | 0.6000 | 0.3000 | 50.0% | 48.0% | 2.0% | 2.0% | 100.0 |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| bccd_ce | 0.6000 | 0.3000 | 50.0% | 10.0% | 40.0% | 40.0% | 100.0 |"),
            std::string::npos)
      << md;
}

TEST(CompareReport, UnfinishedAndUnevaluatedRunsAreReportedNotDropped) {
  TempDir dir;
  SyntheticRun done, running;
  running.seed = 1;
  running.finished = false;
  running.eval_iters = {};
  running.ap = {};
  const Comparison c = build_comparison(
      {read_run(write_run(dir, "done", done)), read_run(write_run(dir, "running", running))});
  const std::string md = markdown_report(c, ReportOptions{}, {});
  EXPECT_NE(md.find("not finished"), std::string::npos) << md;
  EXPECT_NE(md.find("no eval yet"), std::string::npos) << md;
  // The group's AP is its one evaluated run's.
  EXPECT_NE(md.find("| bccd_focal | 1 | 0.500 |"), std::string::npos) << md;
}

TEST(CompareReport, PivotTableOverTwoKeys) {
  TempDir dir;
  std::vector<report::Run> runs;
  for (double gamma : {0.0, 2.0})
    for (double alpha : {0.25, 0.75}) {
      SyntheticRun r;
      r.gamma = gamma;
      r.alpha = alpha;
      r.ap = {0.1 * gamma + alpha};
      runs.push_back(read_run(write_run(dir, "g" + num(gamma) + "a" + num(alpha), r)));
    }
  const Comparison c = build_comparison(std::move(runs));
  ReportOptions o;
  o.pivot_row = "loss.gamma";
  o.pivot_col = "loss.alpha";
  const std::string md = markdown_report(c, o, {});
  EXPECT_NE(md.find("| AP: loss.gamma \\ loss.alpha | 0.25 | 0.75 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| 0 | 0.250 | 0.750 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| 2 | 0.450 | **0.950** |"), std::string::npos) << md;
}

TEST(CompareReport, FinalMetricsCsvHasOneRowPerEvaluatedRun) {
  TempDir dir;
  const Comparison c = build_comparison(focal_and_ce(dir));
  const std::string csv = final_metrics_csv(c);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 7);
  EXPECT_EQ(csv.substr(0, csv.find('\n')),
            "run,group,seed,iter,AP,AP50,AP75,APs,APm,APl,AR100,AP_Platelets,AP_RBC,AP_WBC");
  EXPECT_NE(csv.find(",bccd_ce,2,30,0.44,0.74,0.44,,,,0.6,0.54,0.34,0.44\n"), std::string::npos)
      << csv;
}

TEST(Plot, WritesAPngOfTheStatedSize) {
  ASSERT_TRUE(plotting_available()) << "gnuplot with pngcairo is needed (apt-get install gnuplot-nox)";
  TempDir dir;
  Figure f;
  f.width = 800;
  f.height = 500;
  f.columns = 2;
  Panel p;
  p.title = "a \"quoted\" title with a \\ backslash";
  p.x_label = "iteration";
  p.y_label = "loss";
  p.series.push_back(Series{"run_a", {1, 2, 3}, {3, 2, 1}, {2.5, 1.5, 0.5}, {3.5, 2.5, 1.5}});
  p.series.push_back(Series{"gap", {1, 2, 3}, {1, std::nan(""), 2}, {}, {}});
  f.panels = {p, Panel{}};  // the second panel has no data
  write_png(f, dir / "plot.png");
  EXPECT_EQ(png_size(dir / "plot.png"), std::make_pair(800, 500));
  // Nothing but the image is left in the folder (temp files renamed or removed).
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) ++files, (void)e;
  EXPECT_EQ(files, 1);
}

TEST(Plot, LabelsAreNeverRunAsCommands) {
  ASSERT_TRUE(plotting_available()) << "gnuplot with pngcairo is needed (apt-get install gnuplot-nox)";
  TempDir dir;
  // gnuplot runs `backquoted` text inside double-quoted strings; run names reach labels.
  const std::string marker = dir / "ran";
  Figure f;
  Panel p;
  p.title = "`touch " + marker + "`";
  p.series.push_back(Series{"it's `touch " + marker + "`", {1, 2}, {1, 2}, {}, {}});
  f.panels = {p};
  write_png(f, dir / "plot.png");
  EXPECT_FALSE(std::filesystem::exists(marker));
  EXPECT_EQ(png_size(dir / "plot.png"), std::make_pair(1000, 640));
}

TEST(Plot, EmptyLogScalePanelStillDraws) {
  ASSERT_TRUE(plotting_available()) << "gnuplot with pngcairo is needed (apt-get install gnuplot-nox)";
  TempDir dir;
  Figure f;
  Panel empty;
  empty.log_y = true;  // the loss panels before any run has logged
  f.panels = {empty};
  write_png(f, dir / "plot.png");
  EXPECT_EQ(png_size(dir / "plot.png"), std::make_pair(1000, 640));
}

TEST(Plot, WriteReportMakesEveryPlotItLinks) {
  ASSERT_TRUE(plotting_available()) << "gnuplot with pngcairo is needed (apt-get install gnuplot-nox)";
  TempDir dir;
  const Comparison c = build_comparison(focal_and_ce(dir));
  ReportOptions o;
  o.out_dir = dir / "report";
  EXPECT_TRUE(write_report(c, o).empty());
  std::ifstream in(dir / "report/README.md");
  const std::string md((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const auto& [file, w, h] : std::vector<std::tuple<std::string, int, int>>{
           {"loss.png", 1400, 640},
           {"easy_negative_share.png", 1000, 640},
           {"positives_per_image.png", 1000, 640},
           {"val_ap.png", 1000, 640}}) {
    EXPECT_NE(md.find("](" + file + ")"), std::string::npos) << file;
    EXPECT_EQ(png_size(dir / ("report/" + file)), std::make_pair(w, h)) << file;
  }
}
