// A malformed COCO file given to the focaldet binary: exit status 2 and the reader's message
// (file, entry, what is wrong) on the terminal, never a crash or a silent success.
#include <gtest/gtest.h>

#include <filesystem>
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

TEST(CocoCli, UnknownCategoryExitsWithTwoAndNamesTheEntry) {
  std::string log, path;
  const int status = eval_with_ground_truth(
      R"({"images": [{"id": 1, "file_name": "a.jpg", "width": 8, "height": 8}],
          "categories": [{"id": 1, "name": "cell"}],
          "annotations": [{"id": 4, "image_id": 1, "category_id": 42, "bbox": [1, 2, 3, 4]}]})",
      &log, &path);
  EXPECT_EQ(status, 2) << log;
  EXPECT_NE(log.find(path + ": annotations[0] (id 4): category_id 42 is not in 'categories'"),
            std::string::npos)
      << log;
}

TEST(CocoCli, MalformedJsonExitsWithTwoAndGivesThePosition) {
  std::string log, path;
  const int status = eval_with_ground_truth("{\"images\": [\n  {\"id\": 1,, }]}", &log, &path);
  EXPECT_EQ(status, 2) << log;
  EXPECT_NE(log.find(path + ": malformed JSON: line 2, column 12"), std::string::npos) << log;
}

TEST(CocoCli, FileNameEscapingTheRootExitsWithTwo) {
  std::string log, path;
  const int status = eval_with_ground_truth(
      R"({"images": [{"id": 1, "file_name": "../../etc/passwd", "width": 8, "height": 8}],
          "categories": [{"id": 1, "name": "cell"}], "annotations": []})",
      &log, &path);
  EXPECT_EQ(status, 2) << log;
  EXPECT_NE(log.find("images[0] (id 1): 'file_name' \"../../etc/passwd\" escapes the image root"),
            std::string::npos)
      << log;
}

}  // namespace
}  // namespace focaldet::data
