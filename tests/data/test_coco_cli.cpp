// A malformed COCO file given to the focaldet binary: exit status 2 and the reader's message
// (file, entry, what is wrong) on the terminal, never a crash or a silent success.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <iterator>
#include <fstream>
#include <string>

#include "run_focaldet.h"
#include "support/oracle.h"

namespace focaldet::data {
namespace {

namespace fs = std::filesystem;

constexpr const char* kDetections =
    R"([{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5}])";

// `focaldet eval` with `gt` as the ground truth and one valid detection.
int eval_with_ground_truth(const std::string& gt, std::string* log, std::string* gt_path) {
  const std::string dir = test::make_temp_dir("focaldet_coco_cli_");
  *gt_path = dir + "/gt.json";
  std::ofstream(*gt_path) << gt;
  std::ofstream(dir + "/dets.json") << kDetections;
  const int status = test::run_focaldet(
      "eval --annotations " + *gt_path + " --detections " + dir + "/dets.json", log);
  fs::remove_all(dir);
  return status;
}

// eval reads the ground truth as pycocotools does (eval/ground_truth_json.h): an annotation
// of a category that is not listed is left out with a note; training's reader refuses it
// (test_coco_malformed).
TEST(CocoCli, UnknownCategoryIsLeftOutWithANote) {
  std::string log, path;
  const int status = eval_with_ground_truth(
      R"({"images": [{"id": 1, "file_name": "a.jpg", "width": 8, "height": 8}],
          "categories": [{"id": 1, "name": "cell"}],
          "annotations": [{"id": 4, "image_id": 1, "category_id": 42, "bbox": [1, 2, 3, 4]}]})",
      &log, &path);
  EXPECT_EQ(status, 0) << log;
  EXPECT_NE(log.find("1 ground truth annotations of images or categories not listed"),
            std::string::npos)
      << log;
}

TEST(CocoCli, MalformedJsonExitsWithTwoAndGivesThePosition) {
  std::string log, path;
  const int status = eval_with_ground_truth("{\"images\": [\n  {\"id\": 1,, }]}", &log, &path);
  EXPECT_EQ(status, 2) << log;
  EXPECT_NE(log.find(path + ": malformed JSON: line 2, column 12"), std::string::npos) << log;
}

// eval never opens an image, so the file_name rule is training's alone (test_coco_malformed).
TEST(CocoCli, EvalDoesNotCheckFileNames) {
  std::string log, path;
  const int status = eval_with_ground_truth(
      R"({"images": [{"id": 1, "file_name": "../../etc/passwd", "width": 8, "height": 8}],
          "categories": [{"id": 1, "name": "cell"}], "annotations": []})",
      &log, &path);
  EXPECT_EQ(status, 0) << log;
}

// Issue 10, finding 4: `focaldet eval ... > report.txt` must still show an error. The report
// goes to stdout; the error (and every log line) to stderr.
TEST(CocoCli, ErrorsGoToStderrNotStdout) {
  const std::string dir = test::make_temp_dir("focaldet_coco_cli_");
  std::ofstream(dir + "/dets.json") << kDetections;
  const std::string command = std::string(FOCALDET_BINARY) + " eval --annotations " + dir +
                              "/missing.json --detections " + dir + "/dets.json > " + dir +
                              "/out.txt 2> " + dir + "/err.txt";
  const int status = std::system(command.c_str());
  std::ifstream out_file(dir + "/out.txt"), err_file(dir + "/err.txt");
  const std::string out((std::istreambuf_iterator<char>(out_file)), std::istreambuf_iterator<char>());
  const std::string err((std::istreambuf_iterator<char>(err_file)), std::istreambuf_iterator<char>());
  fs::remove_all(dir);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << status;
  EXPECT_EQ(out, "");
  EXPECT_NE(err.find("missing.json"), std::string::npos) << err;
}

}  // namespace
}  // namespace focaldet::data
