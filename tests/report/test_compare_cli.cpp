// `focaldet compare` end to end on hand-written run directories: the report and its files, and
// bad input (a folder that is not a run, a corrupt metrics line, a run on other data) named,
// with the report still made from the valid runs; nothing valid at all is exit code 2.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "data/run_focaldet.h"
#include "synthetic_run.h"

using focaldet::test::run_focaldet;
using focaldet::test::SyntheticRun;
using focaldet::test::TempDir;
using focaldet::test::write_run;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

TEST(CompareCli, ReportFromValidRunsNamesEveryBadInput) {
  TempDir dir;
  SyntheticRun focal, ce;
  ce.name = "bccd_ce";
  ce.cls = "ce";
  ce.ap = {0.4};
  const std::string f = write_run(dir, "focal", focal);
  const std::string c = write_run(dir, "ce", ce);
  {
    std::ofstream out(c + "/metrics.jsonl", std::ios::app);
    out << "{\"iter\":40,\"lo\n";
  }
  SyntheticRun other;
  other.val = "/data/other/val.json";
  other.classes = {"cat"};
  const std::string o = write_run(dir, "other", other);
  dir.write("notarun/readme.txt", "x");
  std::string output;
  const int code = run_focaldet("compare " + f + " " + c + " " + o + " " + (dir / "notarun") +
                                    " --out " + (dir / "report") + " --title Test",
                                &output);
  EXPECT_EQ(code, 0) << output;
  // stdout has the summary; the warnings name each problem.
  EXPECT_NE(output.find("bccd_ce"), std::string::npos) << output;
  EXPECT_NE(output.find("notarun: not a run directory"), std::string::npos) << output;
  EXPECT_NE(output.find("ce/metrics.jsonl:4"), std::string::npos) << output;
  EXPECT_NE(output.find("other: left out, it is evaluated on other data"), std::string::npos)
      << output;
  const std::string md = read_file(dir / "report/README.md");
  EXPECT_NE(md.find("# Test"), std::string::npos);
  EXPECT_NE(md.find("| bccd_focal | 1 | **0.500** |"), std::string::npos) << md;
  EXPECT_NE(md.find("| bccd_ce | 1 | 0.400 |"), std::string::npos) << md;
  EXPECT_NE(md.find("## Notes"), std::string::npos) << md;
  EXPECT_NE(md.find("notarun"), std::string::npos) << md;
  for (const char* file : {"final_metrics.csv", "curves.csv", "loss.png", "val_ap.png"})
    EXPECT_TRUE(std::filesystem::is_regular_file(dir / ("report/" + std::string(file)))) << file;
}

TEST(CompareCli, NoRunAtAllIsExitTwo) {
  TempDir dir;
  dir.write("a/x.txt", "x");
  std::string output;
  EXPECT_EQ(run_focaldet("compare " + (dir / "a") + " " + (dir / "missing") + " --out " +
                             (dir / "report"),
                         &output),
            2)
      << output;
  EXPECT_NE(output.find("none of the 2 folders given is a run directory"), std::string::npos)
      << output;
  EXPECT_FALSE(std::filesystem::exists(dir / "report/README.md"));
}

TEST(CompareCli, BadPivotIsExitTwo) {
  TempDir dir;
  const std::string run = write_run(dir, "run", SyntheticRun{});
  std::string output;
  EXPECT_EQ(run_focaldet("compare " + run + " --out " + (dir / "r") + " --pivot loss.gamma", &output),
            2)
      << output;
  EXPECT_NE(output.find("--pivot: expected ROW_KEY,COLUMN_KEY"), std::string::npos) << output;
  output.clear();
  EXPECT_EQ(run_focaldet("compare " + run + " --out " + (dir / "r") + " --pivot loss.gamma,loss.gama",
                         &output),
            2)
      << output;
  EXPECT_NE(output.find("'loss.gama' is not a config key"), std::string::npos) << output;
}
