// read_coco on the bundled BCCD json (checked against an independent nlohmann parse) and on
// small crafted files: ids, boxes and categories round-trip, evaluation mode keeps boxes as
// written, training mode clips and drops, crowd and empty images are handled as documented.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "common/error.h"
#include "data/coco_dataset.h"
#include "support/oracle.h"

namespace focaldet::data {
namespace {

using nlohmann::json;

// A 100x50 image (id 7), a 640x480 image (id 9), categories 5 "b", 2 "a", 31 "c" (unordered,
// non-contiguous), no annotations; tests add their own.
json small_coco() {
  return json{
      {"images",
       {{{"id", 7}, {"file_name", "a.jpg"}, {"width", 100}, {"height", 50}},
        {{"id", 9}, {"file_name", "sub/b.jpg"}, {"width", 640}, {"height", 480}}}},
      {"categories",
       {{{"id", 5}, {"name", "b"}}, {{"id", 2}, {"name", "a"}}, {{"id", 31}, {"name", "c"}}}},
      {"annotations", json::array()}};
}

json annotation(int64_t id, int64_t image_id, int64_t category_id, std::vector<double> bbox) {
  return json{{"id", id}, {"image_id", image_id}, {"category_id", category_id}, {"bbox", bbox}};
}

CocoDataset parse(const json& j, const CocoReadOptions& options = {}) {
  return parse_coco(j.dump(), "crafted.json", options);
}

TEST(CocoRead, BccdMatchesIndependentParse) {
  for (const std::string split : {"train", "val", "trainval", "test"}) {
    const std::string path = test::source_path("data/bccd/coco/instances_" + split + ".json");
    CocoReadOptions options;
    options.sanitize_boxes = false;
    options.image_root = test::source_path("data/bccd/JPEGImages");
    const CocoDataset ds = read_coco(path, options);
    std::ifstream in(path);
    const json want = json::parse(in);
    EXPECT_EQ(ds.path, path);
    ASSERT_EQ(ds.images.size(), want["images"].size()) << split;
    for (std::size_t i = 0; i < ds.images.size(); ++i) {
      const json& w = want["images"][i];
      EXPECT_EQ(ds.images[i].id, w["id"].get<int64_t>());
      EXPECT_EQ(ds.images[i].file_name, w["file_name"].get<std::string>());
      EXPECT_EQ(ds.images[i].width, w["width"].get<int>());
      EXPECT_EQ(ds.images[i].height, w["height"].get<int>());
      EXPECT_EQ(ds.image_index.at(ds.images[i].id), i);
    }
    ASSERT_EQ(ds.annotations.size(), want["annotations"].size()) << split;
    std::size_t listed = 0;
    for (std::size_t i = 0; i < ds.annotations.size(); ++i) {
      const json& w = want["annotations"][i];
      const CocoAnnotation& a = ds.annotations[i];
      EXPECT_EQ(a.id, w["id"].get<int64_t>());
      EXPECT_EQ(a.image_id, w["image_id"].get<int64_t>());
      EXPECT_EQ(a.category_id, w["category_id"].get<int64_t>());
      // Both parsers round to the nearest double of the same decimal text: exact.
      EXPECT_DOUBLE_EQ(a.x, w["bbox"][0].get<double>());
      EXPECT_DOUBLE_EQ(a.y, w["bbox"][1].get<double>());
      EXPECT_DOUBLE_EQ(a.w, w["bbox"][2].get<double>());
      EXPECT_DOUBLE_EQ(a.h, w["bbox"][3].get<double>());
      EXPECT_DOUBLE_EQ(a.area, w["area"].get<double>());
      EXPECT_EQ(a.iscrowd, w["iscrowd"].get<int>() == 1);
    }
    for (std::size_t i = 0; i < ds.images.size(); ++i) {
      for (std::size_t k : ds.annotations_of_image[i]) {
        EXPECT_EQ(ds.annotations[k].image_id, ds.images[i].id);
        ++listed;
      }
    }
    EXPECT_EQ(listed, ds.annotations.size());
    ASSERT_EQ(ds.categories.size(), want["categories"].size());
    for (std::size_t i = 0; i < ds.categories.size(); ++i) {
      EXPECT_EQ(ds.categories[i].id, want["categories"][i]["id"].get<int64_t>());
      EXPECT_EQ(ds.categories[i].name, want["categories"][i]["name"].get<std::string>());
    }
  }
}

TEST(CocoRead, BccdTrainingModeKeepsEveryBox) {
  // BCCD boxes all lie inside their 640x480 images with positive size (VOC corners 1..640).
  const CocoDataset ds = read_coco(test::source_path("data/bccd/coco/instances_train.json"));
  EXPECT_EQ(ds.annotations.size(), 2805u);  // data/bccd/README.md: 205 train images
  EXPECT_EQ(ds.num_dropped, 0);
  EXPECT_EQ(ds.num_clipped, 0);
}

TEST(CocoRead, CrowdRemapFixtureAgreesWithIndependentCounts) {
  // tests/eval/fixtures: ~8% crowd boxes, images without annotations, category ids
  // 5/2/31 (unordered) plus 90 without ground truth. Expected values counted with nlohmann.
  const std::string path = test::source_path("tests/eval/fixtures/crowd_remap.gt.json");
  std::ifstream in(path);
  ASSERT_TRUE(in) << "fixture missing: " << path;
  const json want = json::parse(in);
  std::size_t want_crowd = 0;
  std::map<int64_t, std::size_t> want_per_image;
  for (const json& a : want["annotations"]) {
    want_crowd += a["iscrowd"].get<int>();
    ++want_per_image[a["image_id"].get<int64_t>()];
  }
  CocoReadOptions options;
  options.sanitize_boxes = false;
  const CocoDataset ds = read_coco(path, options);
  std::size_t crowd = 0, empty = 0;
  for (const CocoAnnotation& a : ds.annotations) crowd += a.iscrowd;
  for (std::size_t i = 0; i < ds.images.size(); ++i) {
    const auto it = want_per_image.find(ds.images[i].id);
    EXPECT_EQ(ds.annotations_of_image[i].size(), it == want_per_image.end() ? 0u : it->second);
    empty += ds.annotations_of_image[i].empty();
  }
  EXPECT_GT(crowd, 0u);
  EXPECT_EQ(crowd, want_crowd);
  EXPECT_EQ(empty, ds.images.size() - want_per_image.size());
  EXPECT_GT(empty, 0u);
  EXPECT_EQ(ds.contiguous_to_category, (std::vector<int64_t>{2, 5, 31, 90}));
  // Training mode with drop_empty_images removes exactly the images without a non-crowd box.
  CocoReadOptions train;
  train.drop_empty_images = true;
  const CocoDataset dropped = read_coco(path, train);
  std::set<int64_t> with_box;
  for (const json& a : want["annotations"]) {
    if (a["iscrowd"].get<int>() == 0) with_box.insert(a["image_id"].get<int64_t>());
  }
  EXPECT_EQ(dropped.images.size(), with_box.size());
  EXPECT_EQ(dropped.num_empty_images_dropped, int64_t(ds.images.size() - with_box.size()));
}

TEST(CocoRead, CategoryIdsMapToAscendingContiguousIndices) {
  const CocoDataset ds = parse(small_coco());
  ASSERT_EQ(ds.contiguous_to_category, (std::vector<int64_t>{2, 5, 31}));
  EXPECT_EQ(ds.category_to_contiguous.at(2), 0);
  EXPECT_EQ(ds.category_to_contiguous.at(5), 1);
  EXPECT_EQ(ds.category_to_contiguous.at(31), 2);
  for (std::size_t i = 0; i < ds.contiguous_to_category.size(); ++i) {
    EXPECT_EQ(ds.category_to_contiguous.at(ds.contiguous_to_category[i]), int(i));
  }
  ASSERT_EQ(ds.categories.size(), 3u);  // file order kept
  EXPECT_EQ(ds.categories[0].id, 5);
  EXPECT_EQ(ds.categories[0].name, "b");
}

TEST(CocoRead, EvaluationModeKeepsBoxesAsWritten) {
  json j = small_coco();
  j["annotations"].push_back(annotation(1, 7, 5, {-10, 5, 300, 20}));  // outside the image
  j["annotations"].push_back(annotation(2, 7, 2, {1, 2, 0, 4}));       // zero width
  j["annotations"].push_back(annotation(3, 9, 31, {1.5, 2.25, 3, 4}));
  j["annotations"][2]["area"] = 99.5;  // pycocotools uses "area" as written
  j["annotations"][2]["iscrowd"] = 1;
  CocoReadOptions options;
  options.sanitize_boxes = false;
  const CocoDataset ds = parse(j, options);
  ASSERT_EQ(ds.annotations.size(), 3u);
  EXPECT_DOUBLE_EQ(ds.annotations[0].x, -10);
  EXPECT_DOUBLE_EQ(ds.annotations[0].w, 300);
  EXPECT_DOUBLE_EQ(ds.annotations[0].area, 300.0 * 20.0);  // absent: w*h
  EXPECT_FALSE(ds.annotations[0].iscrowd);                 // absent: 0
  EXPECT_DOUBLE_EQ(ds.annotations[1].w, 0);
  EXPECT_DOUBLE_EQ(ds.annotations[2].x, 1.5);
  EXPECT_DOUBLE_EQ(ds.annotations[2].y, 2.25);
  EXPECT_DOUBLE_EQ(ds.annotations[2].area, 99.5);
  EXPECT_TRUE(ds.annotations[2].iscrowd);
  EXPECT_EQ(ds.num_clipped, 0);
  EXPECT_EQ(ds.num_dropped, 0);
}

TEST(CocoRead, TrainingModeClipsBoxesToTheImage) {
  json j = small_coco();
  j["annotations"].push_back(annotation(1, 7, 5, {-10, 5, 30, 60}));  // image is 100x50
  const CocoDataset ds = parse(j);
  ASSERT_EQ(ds.annotations.size(), 1u);
  const CocoAnnotation& a = ds.annotations[0];
  // x: [-10, 20] -> [0, 20]; y: [5, 65] -> [5, 50].
  EXPECT_DOUBLE_EQ(a.x, 0);
  EXPECT_DOUBLE_EQ(a.y, 5);
  EXPECT_DOUBLE_EQ(a.w, 20);
  EXPECT_DOUBLE_EQ(a.h, 45);
  EXPECT_DOUBLE_EQ(a.area, 20.0 * 45.0);
  EXPECT_EQ(ds.num_clipped, 1);
}

TEST(CocoRead, TrainingModeLeavesBoxesInsideTheImageBitIdentical) {
  json j = small_coco();
  // (0.1 + 0.2) - 0.1 != 0.2 in double: a clip that recomputed w from corners would change it.
  j["annotations"].push_back(annotation(1, 7, 5, {0.1, 0.7, 0.2, 0.1}));
  const CocoDataset ds = parse(j);
  ASSERT_EQ(ds.annotations.size(), 1u);
  // Exact on purpose: an unclipped box must be the very double that was written.
  EXPECT_EQ(ds.annotations[0].x, 0.1);
  EXPECT_EQ(ds.annotations[0].w, 0.2);
  EXPECT_EQ(ds.annotations[0].h, 0.1);
  EXPECT_EQ(ds.num_clipped, 0);
}

TEST(CocoRead, TrainingModeDropsEmptyBoxesAndCountsThem) {
  json j = small_coco();
  j["annotations"].push_back(annotation(1, 7, 5, {1, 2, 0, 4}));      // zero width
  j["annotations"].push_back(annotation(2, 7, 5, {1, 2, 3, -1}));     // negative height
  j["annotations"].push_back(annotation(3, 7, 5, {200, 2, 10, 10}));  // right of a 100-wide image
  j["annotations"].push_back(annotation(4, 7, 5, {1, 2, 3, 4}));
  const CocoDataset ds = parse(j);
  ASSERT_EQ(ds.annotations.size(), 1u);
  EXPECT_EQ(ds.annotations[0].id, 4);
  EXPECT_EQ(ds.num_dropped, 3);
  EXPECT_EQ(ds.num_clipped, 0);
}

TEST(CocoRead, DroppedBoxesGiveOneSummaryWarning) {
  json j = small_coco();
  for (int i = 1; i <= 5; ++i) j["annotations"].push_back(annotation(i, 7, 5, {1, 2, 0, 4}));
  std::ostringstream captured;
  const auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(captured)));
  const CocoDataset ds = parse(j);
  spdlog::set_default_logger(previous);
  const std::string log = captured.str();
  EXPECT_EQ(ds.num_dropped, 5);
  std::size_t warnings = 0;
  for (std::size_t at = log.find("[warning]"); at != std::string::npos;
       at = log.find("[warning]", at + 1)) {
    ++warnings;
  }
  EXPECT_EQ(warnings, 1u) << log;
  EXPECT_NE(log.find("crafted.json: dropped 5 of 5 boxes: 5 with zero or negative width/height"),
            std::string::npos)
      << log;
}

TEST(CocoRead, CrowdBoxesAreKeptAndMarked) {
  json j = small_coco();
  j["annotations"].push_back(annotation(1, 7, 5, {1, 2, 3, 4}));
  j["annotations"].push_back(annotation(2, 7, 5, {10, 20, 30, 20}));
  j["annotations"][1]["iscrowd"] = 1;
  const CocoDataset ds = parse(j);
  ASSERT_EQ(ds.annotations.size(), 2u);
  EXPECT_FALSE(ds.annotations[0].iscrowd);
  EXPECT_TRUE(ds.annotations[1].iscrowd);
}

TEST(CocoRead, ImagesWithoutAnnotationsAreKeptByDefault) {
  json j = small_coco();
  j["annotations"].push_back(annotation(1, 9, 5, {1, 2, 3, 4}));
  const CocoDataset ds = parse(j);
  ASSERT_EQ(ds.images.size(), 2u);
  EXPECT_TRUE(ds.annotations_of_image[0].empty());
  EXPECT_EQ(ds.annotations_of_image[1], (std::vector<std::size_t>{0}));
}

TEST(CocoRead, DropEmptyImagesRemovesImagesWithOnlyCrowdOrNothing) {
  json j = small_coco();
  j["images"].push_back({{"id", 11}, {"file_name", "c.jpg"}, {"width", 10}, {"height", 10}});
  j["annotations"].push_back(annotation(1, 7, 5, {1, 2, 3, 4}));
  j["annotations"][0]["iscrowd"] = 1;                              // image 7: crowd only
  j["annotations"].push_back(annotation(2, 11, 2, {1, 1, 2, 2}));  // image 11: a box
  CocoReadOptions options;
  options.drop_empty_images = true;
  const CocoDataset ds = parse(j, options);
  ASSERT_EQ(ds.images.size(), 1u);
  EXPECT_EQ(ds.images[0].id, 11);
  EXPECT_EQ(ds.image_index.at(11), 0u);
  EXPECT_EQ(ds.image_index.count(7), 0u);
  ASSERT_EQ(ds.annotations.size(), 1u);
  EXPECT_EQ(ds.annotations[0].id, 2);
  EXPECT_EQ(ds.annotations_of_image[0], (std::vector<std::size_t>{0}));
  EXPECT_EQ(ds.num_empty_images_dropped, 2);
}

TEST(CocoRead, IntegralDoublesAndBooleanCrowdAreAccepted) {
  json j = small_coco();
  j["annotations"].push_back(annotation(1, 7, 5, {1, 2, 3, 4}));
  j["annotations"][0]["id"] = 1.0;
  j["annotations"][0]["iscrowd"] = true;
  const CocoDataset ds = parse(j);
  ASSERT_EQ(ds.annotations.size(), 1u);
  EXPECT_EQ(ds.annotations[0].id, 1);
  EXPECT_TRUE(ds.annotations[0].iscrowd);
}

TEST(CocoRead, ByteOrderMarkIsSkipped) {
  const CocoDataset ds = parse_coco("\xEF\xBB\xBF" + small_coco().dump(), "crafted.json");
  EXPECT_EQ(ds.images.size(), 2u);
}

TEST(CocoRead, RepeatedTopLevelKeyTakesTheLastAsPython) {
  const std::string text =
      R"({"images": [], "categories": [], "annotations": [], )"
      R"("images": [{"id": 3, "file_name": "c.jpg", "width": 2, "height": 2}]})";
  const CocoDataset ds = parse_coco(text, "crafted.json");
  ASSERT_EQ(ds.images.size(), 1u);
  EXPECT_EQ(ds.images[0].id, 3);
}

TEST(CocoRead, MissingImageFilesAreNamedAtStartUp) {
  const std::string root = test::make_temp_dir("focaldet_coco_");
  std::filesystem::create_directories(root + "/sub");
  std::ofstream(root + "/sub/b.jpg") << "x";  // a.jpg is missing
  CocoReadOptions options;
  options.image_root = root;
  try {
    parse(small_coco(), options);
    FAIL() << "no error for a missing image file";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("crafted.json"), std::string::npos) << what;
    EXPECT_NE(what.find("1 of 2 image files are missing"), std::string::npos) << what;
    EXPECT_NE(what.find("a.jpg"), std::string::npos) << what;
    EXPECT_EQ(what.find("b.jpg"), std::string::npos) << what;
  }
  std::filesystem::remove_all(root);
}

TEST(CocoRead, UnreadableFileIsAnErrorNamingIt) {
  try {
    read_coco("/nonexistent/instances.json");
    FAIL() << "no error for a missing json";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/instances.json: cannot open"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace focaldet::data
