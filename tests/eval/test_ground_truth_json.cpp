// The ground truth as `focaldet eval` reads it: what pycocotools evaluates is accepted (eval
// never opens an image), while training's reader (data::parse_coco) still refuses the same
// text; what evaluation cannot do without is an error naming the entry.
#include <gtest/gtest.h>

#include <string>

#include "common/error.h"
#include "data/coco_dataset.h"
#include "eval/coco_eval.h"
#include "eval/ground_truth_json.h"
#include "eval_test_util.h"

namespace focaldet::test {
namespace {

using eval::parse_ground_truth;

std::string error_of(const std::string& json) {
  try {
    parse_ground_truth(json, "gt.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_ERROR_HAS(json, ...)                                   \
  do {                                                                \
    const std::string message_ = error_of(json);                      \
    ASSERT_FALSE(message_.empty()) << "accepted: " << json;           \
    for (const char* part_ : {__VA_ARGS__}) {                         \
      EXPECT_NE(message_.find(part_), std::string::npos) << message_; \
    }                                                                 \
  } while (0)

bool training_reader_refuses(const std::string& json) {
  data::CocoReadOptions options;
  options.sanitize_boxes = false;
  try {
    data::parse_coco(json, "gt.json", options);
  } catch (const Error&) {
    return true;
  }
  return false;
}

// One image entry in place of IMAGE, otherwise valid.
std::string with_image(const std::string& image) {
  return R"({"images": [)" + image +
         R"(], "categories": [{"id": 1, "name": "cell"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1,
                             "bbox": [0, 0, 10, 10], "area": 100, "iscrowd": 0}]})";
}

TEST(GroundTruthJson, ImageFieldsEvalNeverUsesAreNotChecked) {
  for (const std::string image :
       {R"({"id": 1, "file_name": "/abs/a.jpg", "width": 640, "height": 480})",
        R"({"id": 1, "file_name": "../up.jpg", "width": 640, "height": 480})",
        R"({"id": 1})",  // no file_name, width, height
        R"({"id": 1, "file_name": "a.jpg", "width": 3e9, "height": 0})"}) {
    const std::string json = with_image(image);
    const data::CocoDataset ds = parse_ground_truth(json, "gt.json");
    ASSERT_EQ(ds.images.size(), 1u) << image;
    EXPECT_EQ(ds.images[0].id, 1);
    EXPECT_EQ(ds.annotations.size(), 1u);
    // Training opens the images: its reader is as strict as before.
    EXPECT_TRUE(training_reader_refuses(json)) << image;
  }
}

std::string with_crowd(const std::string& iscrowd) {
  return R"({"images": [{"id": 1}], "categories": [{"id": 1, "name": "cell"}],
             "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10])" +
         (iscrowd.empty() ? std::string() : ", \"iscrowd\": " + iscrowd) + "}]}";
}

// gt['ignore'] = 'iscrowd' in gt and gt['iscrowd']: any truthy value is a crowd region.
TEST(GroundTruthJson, AnyNonZeroIscrowdIsCrowd) {
  for (const char* crowd : {"1", "2", "-1", "true", "1.0", "7"}) {
    EXPECT_TRUE(parse_ground_truth(with_crowd(crowd), "gt.json").annotations.at(0).iscrowd)
        << crowd;
  }
  for (const char* regular : {"0", "false", "null", "0.0", ""}) {
    EXPECT_FALSE(parse_ground_truth(with_crowd(regular), "gt.json").annotations.at(0).iscrowd)
        << regular;
  }
  EXPECT_TRUE(training_reader_refuses(with_crowd("2")));
}

// A fraction has no single meaning in pycocotools (ignored as truthy, yet int(0.5) = 0 makes
// its IoU a regular one): refused, naming the entry.
TEST(GroundTruthJson, FractionalOrStringIscrowdIsNamed) {
  EXPECT_ERROR_HAS(with_crowd("0.5"), "gt.json", "annotations[0]", "iscrowd", "0.5");
  EXPECT_ERROR_HAS(with_crowd("\"yes\""), "annotations[0]", "iscrowd", "a string");
}

TEST(GroundTruthJson, CrowdTwoAbsorbsDetectionsAsPycocotoolsDoes) {
  const data::CocoDataset gt = parse_ground_truth(
      R"({"images": [{"id": 1}], "categories": [{"id": 1}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10]},
                          {"id": 2, "image_id": 1, "category_id": 1, "bbox": [50, 50, 20, 20],
                           "iscrowd": 2}]})",
      "gt.json");
  // The second detection lies inside the crowd region: ignored, not a false positive, so AP
  // stays 1 (with iscrowd 2 read as regular it would be a false positive ranked first: 0.5).
  const eval::CocoEvalResult r =
      eval::evaluate(gt, {det(1, 1, {0, 0, 10, 10}, 0.5), det(1, 1, {55, 55, 5, 5}, 0.9)});
  EXPECT_NEAR(r.stats[0], 1.0, 1e-12);
}

TEST(GroundTruthJson, MissingCategoryNameIsEmptyAndUnlistedReferencesAreKept) {
  const data::CocoDataset ds = parse_ground_truth(
      R"({"images": [{"id": 1}], "categories": [{"id": 3}],
          "annotations": [{"id": 1, "image_id": 9, "category_id": 1, "bbox": [0, 0, 1, 1]}]})",
      "gt.json");
  ASSERT_EQ(ds.categories.size(), 1u);
  EXPECT_EQ(ds.categories[0].name, "");
  // evaluate() leaves it out (and counts it), as getAnnIds does.
  EXPECT_EQ(ds.annotations.size(), 1u);
}

TEST(GroundTruthJson, WhatEvaluationNeedsIsAnErrorNamingTheEntry) {
  EXPECT_ERROR_HAS(
      R"({"images": [{"id": 1}], "categories": [{"id": 1}],
          "annotations": [{"id": 4, "image_id": 1, "category_id": 1}]})",
      "gt.json", "annotations[0]", "id 4", "bbox");
  EXPECT_ERROR_HAS(
      R"({"images": [{"id": 1}], "categories": [{"id": 1}],
          "annotations": [{"id": 4, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1]}]})",
      "annotations[0]", "4 numbers");
  EXPECT_ERROR_HAS(R"({"images": [{"file_name": "a.jpg"}], "categories": [], "annotations": []})",
                   "images[0]", "'id'");
  EXPECT_ERROR_HAS(
      R"({"images": [{"id": 1}], "categories": [{"id": 1}],
          "annotations": [{"id": 4, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]},
                          {"id": 4, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2]}]})",
      "annotations[1]", "duplicate annotation id 4", "annotations[0]");
  EXPECT_ERROR_HAS(R"({"images": [], "categories": []})", "gt.json", "'annotations'");
}

TEST(GroundTruthJson, ByteOrderMarkIsSkipped) {
  const data::CocoDataset ds =
      parse_ground_truth("\xEF\xBB\xBF" + with_image(R"({"id": 1})"), "gt.json");
  EXPECT_EQ(ds.images.size(), 1u);
}

TEST(GroundTruthJson, IntegerTooLargeNamesThePlace) {
  EXPECT_ERROR_HAS(
      R"({"images": [{"id": 1}, {"id": 99999999999999999999999}], "categories": [],
          "annotations": []})",
      "gt.json", "images[1].id", "99999999999999999999999", "64 bits");
  EXPECT_ERROR_HAS(with_image(R"({"id": 18446744073709551615})"), "images[0]", "too large");
}

TEST(GroundTruthJson, TruncatedFileSaysWhereItEnds) {
  const std::string json = with_image(R"({"id": 1})");
  const std::string message = error_of(json.substr(0, json.size() - 20));
  EXPECT_NE(message.find("end of the input"), std::string::npos) << message;
  EXPECT_NE(message.find("annotations[0]"), std::string::npos) << message;
  EXPECT_EQ(message.find("byte 0)"), std::string::npos) << message;
}

}  // namespace
}  // namespace focaldet::test
