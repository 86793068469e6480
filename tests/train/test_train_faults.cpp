// Faults in the middle of `focaldet train` (issue 10): a full disk while a checkpoint or
// metrics.jsonl is written (RLIMIT_FSIZE stands in for it), a truncated checkpoint on resume,
// and a corrupt image mid-epoch. Each must give a clear message naming the file, leave the last
// good checkpoint intact and no temp file, and a resume must then log the same losses as a run
// that never failed.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "config/config_io.h"
#include "data/loader.h"
#include "data/run_focaldet.h"
#include "support/temp_dir.h"
#include "train/from_config.h"
#include "train/train_run_util.h"

using namespace focaldet::test;  // train_run_util.h, temp_dir.h, run_focaldet.h

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A smoke run killed while writing its iteration-8 checkpoint (the third write of last.pt: at
// 0, 4, 8): last.pt holds iteration 4, metrics.jsonl has the lines of iterations 2..8.
void run_killed_at_iteration_8(const std::string& run) {
  const int status =
      wait_status(spawn(split_args(train_args(run)), "FOCALDET_FAULT_KILL_IN_WRITE=last.pt@3"));
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  ASSERT_EQ(read_jsonl(run + "/metrics.jsonl").size(), 4u);
}

// Made once for the suite: the smoke run never interrupted (the reference losses), and a run
// killed at iteration 8 that each test copies and then breaks in its own way.
class TrainFaults : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    shared_ = new TempDir;
    std::string out;
    ASSERT_EQ(run_focaldet(train_args(shared_->str() + "/reference"), &out), 0) << out;
    run_killed_at_iteration_8(shared_->str() + "/killed");
  }
  static void TearDownTestSuite() {
    delete shared_;
    shared_ = nullptr;
  }
  static std::vector<nlohmann::json> reference_losses() {
    return read_jsonl(shared_->str() + "/reference/metrics.jsonl");
  }
  // A copy of the killed run in this test's temp dir.
  std::string killed_run() {
    const std::string run = tmp_.str() + "/run";
    fs::copy(shared_->str() + "/killed", run, fs::copy_options::recursive);
    return run;
  }
  TempDir tmp_;
  static TempDir* shared_;
};
TempDir* TrainFaults::shared_ = nullptr;

// The iteration a run would resume at, from the message of `focaldet train --resume`.
int resumed_at(const std::string& output) {
  std::smatch m;
  const std::regex resuming("resuming .* at iteration ([0-9]+)");
  return std::regex_search(output, m, resuming) ? std::stoi(m[1]) : -1;
}

}  // namespace

TEST_F(TrainFaults, DiskFullWhileWritingACheckpointKeepsTheLastOne) {
  const auto want = reference_losses();
  const std::string run = killed_run();
  const auto checkpoint_size = fs::file_size(run + "/checkpoints/last.pt");

  // Resumed at 4 with files limited to half a checkpoint: metrics go on, the iteration-8
  // checkpoint cannot be written.
  std::string out;
  const int rc =
      run_limited(split_args("train --resume " + run), checkpoint_size / 2, &out);
  EXPECT_EQ(rc, 2) << out;  // before the fix: killed by SIGXFSZ with no word said
  EXPECT_NE(out.find("iteration 8: cannot write " + run + "/checkpoints/last.pt"), std::string::npos) << out;
  EXPECT_NE(out.find("File too large"), std::string::npos) << out;
  EXPECT_NE(out.find("last.pt (iteration 4) is the last good state"), std::string::npos) << out;
  EXPECT_FALSE(has_temp_files(run));
  EXPECT_EQ(fs::file_size(run + "/checkpoints/last.pt"), checkpoint_size);

  // With room again, the resume starts at 4 and logs what the reference logged.
  out.clear();
  ASSERT_EQ(run_focaldet("train --resume " + run, &out), 0) << out;
  EXPECT_EQ(resumed_at(out), 4) << out;
  expect_same_losses(read_jsonl(run + "/metrics.jsonl"), want);
  EXPECT_FALSE(has_temp_files(run));
}

TEST_F(TrainFaults, DiskFullWhileAppendingMetricsLosesNothing) {
  const auto want = reference_losses();
  const std::string run = killed_run();

  // The resume keeps the lines up to iteration 4 (two lines); files may grow 20 bytes beyond
  // them, so the iteration-6 line is cut short by the limit.
  const auto lines = read_jsonl(run + "/metrics.jsonl");
  const auto kept_bytes = lines[0].dump().size() + lines[1].dump().size() + 2;
  std::string out;
  const int rc = run_limited(split_args("train --resume " + run), kept_bytes + 20, &out);
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("iteration 6: " + run + "/metrics.jsonl: cannot append"), std::string::npos)
      << out;
  EXPECT_NE(out.find("last.pt (iteration 4) is the last good state"), std::string::npos) << out;
  EXPECT_FALSE(has_temp_files(run));

  // The torn line is dropped on resume; nothing before it is lost.
  out.clear();
  ASSERT_EQ(run_focaldet("train --resume " + run, &out), 0) << out;
  EXPECT_EQ(resumed_at(out), 4) << out;
  expect_same_losses(read_jsonl(run + "/metrics.jsonl"), want);
}

TEST_F(TrainFaults, TruncatedCheckpointIsNamedOnResume) {
  const std::string run = killed_run();
  const std::string last = run + "/checkpoints/last.pt";
  const std::string whole = read_text(last);
  for (const double kept : {0.5, 0.99}) {
    std::ofstream(last, std::ios::binary | std::ios::trunc)
        << whole.substr(0, static_cast<size_t>(static_cast<double>(whole.size()) * kept));
    std::string out;
    EXPECT_EQ(run_focaldet("train --resume " + run, &out), 2) << "kept " << kept << ": " << out;
    EXPECT_NE(out.find(last + ": not a usable focaldet checkpoint"), std::string::npos) << out;
  }
  // The run dir is untouched by the failed resumes: with the checkpoint back, it resumes at 4.
  std::ofstream(last, std::ios::binary | std::ios::trunc) << whole;
  std::string out;
  ASSERT_EQ(run_focaldet("train --resume " + run, &out), 0) << out;
  EXPECT_EQ(resumed_at(out), 4) << out;
}

TEST_F(TrainFaults, CorruptImageMidEpochSavesTheStepsTakenAndResumes) {
  const auto want = reference_losses();
  TempDir& tmp = tmp_;

  // An image folder of links to BCCD's images.
  const std::string images = tmp.str() + "/images";
  fs::create_directories(images);
  for (const auto& e : fs::directory_iterator("data/bccd/JPEGImages")) {
    fs::create_symlink(fs::absolute(e.path()), images + "/" + e.path().filename().string());
  }
  const std::vector<std::string> overrides = {"data.val=", "data.image_root=" + images};
  // The first image of the 6th batch of epoch 0 (iteration 6), found with the trainer's own
  // loader options, is replaced by bytes that do not decode.
  const auto config = focaldet::config::load_config("configs/smoke.yaml", overrides);
  const auto train_set = focaldet::train::read_split(config, "train", /*for_training=*/true);
  focaldet::data::Loader loader(train_set, focaldet::train::train_loader_options(config));
  loader.start_epoch(0, 5);
  const auto batch = loader.next();
  ASSERT_TRUE(batch.has_value());
  const auto& image = train_set->images.at(train_set->image_index.at(batch->image_ids[0]));
  const std::string bad = images + "/" + image.file_name;
  fs::remove(bad);
  std::ofstream(bad) << "not a jpeg";

  const std::string run = tmp.str() + "/run";
  const std::string args =
      "train configs/smoke.yaml --run-dir " + run + " --set data.val= --set data.image_root=" + images;
  std::string out;
  EXPECT_EQ(run_focaldet(args, &out), 2) << out;
  EXPECT_NE(out.find("iteration 6 (epoch 0, batch 5): cannot decode image '" + bad + "'"),
            std::string::npos)
      << out;
  // The five steps taken are in the checkpoint (not only the four of the last periodic one).
  EXPECT_NE(out.find("last.pt (iteration 5) is the last good state"), std::string::npos) << out;
  EXPECT_NE(read_text(run + "/train.log").find("cannot decode image"), std::string::npos);

  // The image fixed, the resume starts at that very batch and logs what the reference logged.
  fs::remove(bad);
  fs::create_symlink(fs::absolute("data/bccd/JPEGImages/" + image.file_name), bad);
  out.clear();
  ASSERT_EQ(run_focaldet("train --resume " + run, &out), 0) << out;
  EXPECT_EQ(resumed_at(out), 5) << out;
  expect_same_losses(read_jsonl(run + "/metrics.jsonl"), want);
}
