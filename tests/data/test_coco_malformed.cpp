// Malformed COCO files, one row each: every one must raise focaldet::Error (never crash, never
// load) with a message that names the file, the entry and what is wrong.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/error.h"
#include "data/coco_dataset.h"

namespace focaldet::data {
namespace {

constexpr const char* kImage = R"({"id": 1, "file_name": "a.jpg", "width": 640, "height": 480})";
constexpr const char* kCategory = R"({"id": 1, "name": "cell"})";
constexpr const char* kAnnotation =
    R"({"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]})";

std::string doc(const std::string& images, const std::string& categories,
                const std::string& annotations) {
  return R"({"images": [)" + images + R"(], "categories": [)" + categories +
         R"(], "annotations": [)" + annotations + "]}";
}
std::string with_image(const std::string& image) { return doc(image, kCategory, kAnnotation); }
std::string with_category(const std::string& c) { return doc(kImage, c, kAnnotation); }
std::string with_annotation(const std::string& a) { return doc(kImage, kCategory, a); }
std::string with_bbox(const std::string& bbox) {
  return with_annotation(R"({"id": 1, "image_id": 1, "category_id": 1, "bbox": )" + bbox + "}");
}

struct Case {
  const char* name;
  std::string json;
  std::string message;  // must appear in what()
};

std::vector<Case> cases() {
  return {
      // Not JSON, or JSON but not COCO at the top.
      {"Empty", "", "crafted.json: malformed JSON"},
      {"Truncated", R"({"images": [)",
       "crafted.json: malformed JSON: at the end of the input, line 1, column 13 (byte 12), in "
       "images[0]"},
      {"SyntaxErrorPosition", "{\"images\": [\n  {\"id\": 1,, }]}",
       "malformed JSON: line 2, column 12 (byte 24), in images[0]: syntax error while parsing "
       "object "
       "key"},
      {"NaNLiteral", with_bbox("[1, 2, NaN, 4]"), "malformed JSON: line 1, column"},
      {"Overflow1e999", with_bbox("[1, 2, 1e999, 4]"),
       "malformed JSON: line 1, column 197 (byte 196), in annotations[0].bbox[2]: number overflow "
       "parsing '1e999'"},
      {"NegativeOverflowArea",
       with_annotation(R"({"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], )"
                       R"("area": -1e400})"),
       "in annotations[0].area: number overflow parsing '-1e400'"},
      // simdjson refuses integers beyond 64 bits with "Problem while parsing a number": the
      // diagnosis names the value.
      {"IntegerBeyond64Bits",
       with_image(R"({"id": 123456789012345678901234, "file_name": "a.jpg"})"),
       "malformed JSON: integer '123456789012345678901234' does not fit in 64 bits, in "
       "images[0].id"},
      {"InvalidUtf8",
       with_image("{\"id\": 1, \"file_name\": \"\xff.jpg\", \"width\": 1, \"height\": 1}"),
       "crafted.json: malformed JSON"},
      {"TrailingGarbage", doc(kImage, kCategory, kAnnotation) + "\n x",
       "malformed JSON: line 2, column 2 (byte "},
      {"TooDeep", R"({"images": )" + std::string(5000, '[') + std::string(5000, ']') + "}",
       "crafted.json: malformed JSON: The JSON document was too deep"},
      {"TopLevelArray", "[1, 2]", "crafted.json: the top level must be an object"},
      {"ImagesNotAList", R"({"images": {}, "categories": [], "annotations": []})",
       "crafted.json: 'images' must be an array, got an object"},
      {"MissingCategories", R"({"images": [], "annotations": []})",
       "crafted.json: missing top-level key 'categories'"},
      {"MissingAnnotations", R"({"images": [], "categories": []})",
       "crafted.json: missing top-level key 'annotations'"},
      // images
      {"ImageNotAnObject", with_image("1"),
       "crafted.json: images[0]: must be an object, got an integer"},
      {"ImageMissingId", with_image(R"({"file_name": "a.jpg", "width": 1, "height": 1})"),
       "images[0]: missing key 'id'"},
      {"ImageStringId", with_image(R"({"id": "1", "file_name": "a.jpg", "width": 1, "height": 1})"),
       "images[0]: 'id' must be an integer, got a string"},
      {"ImageFractionalId",
       with_image(R"({"id": 1.5, "file_name": "a.jpg", "width": 1, "height": 1})"),
       "images[0]: 'id' must be an integer, got 1.5"},
      {"ImageIdOutOfRange",
       with_image(R"({"id": 18446744073709551615, "file_name": "a", "width": 1, "height": 1})"),
       "images[0]: 'id' is out of the 64-bit integer range"},
      {"ImageMissingFileName", with_image(R"({"id": 1, "width": 1, "height": 1})"),
       "images[0] (id 1): missing key 'file_name'"},
      {"ImageMissingHeight", with_image(R"({"id": 1, "file_name": "a.jpg", "width": 1})"),
       "images[0] (id 1): missing key 'height'"},
      {"ImageWidthString",
       with_image(R"({"id": 1, "file_name": "a.jpg", "width": "640", "height": 1})"),
       "images[0] (id 1): 'width' must be an integer, got a string"},
      {"ImageZeroWidth",
       with_image(R"({"id": 1, "file_name": "a.jpg", "width": 0, "height": 480})"),
       "images[0] (id 1): image size 0x480 is not positive"},
      {"ImageWidthTooLarge",
       with_image(R"({"id": 1, "file_name": "a.jpg", "width": 3000000000, "height": 480})"),
       "images[0] (id 1): image size 3000000000x480 is too large (at most 2147483647 pixels a "
       "side)"},
      {"ImageFileNameNumber", with_image(R"({"id": 1, "file_name": 7, "width": 1, "height": 1})"),
       "images[0] (id 1): 'file_name' must be a string, got an integer"},
      {"DuplicateImageId", doc(std::string(kImage) + ", " + kImage, kCategory, kAnnotation),
       "images[1] (id 1): duplicate image id 1 (also images[0])"},
      {"FileNameDotDot",
       with_image(R"({"id": 1, "file_name": "../a.jpg", "width": 1, "height": 1})"),
       "images[0] (id 1): 'file_name' \"../a.jpg\" escapes the image root"},
      {"FileNameInnerDotDot",
       with_image(R"({"id": 1, "file_name": "x/../../a.jpg", "width": 1, "height": 1})"),
       "'file_name' \"x/../../a.jpg\" escapes the image root"},
      {"FileNameAbsolute",
       with_image(R"({"id": 1, "file_name": "/etc/passwd", "width": 1, "height": 1})"),
       "images[0] (id 1): 'file_name' \"/etc/passwd\" is absolute"},
      {"FileNameEmpty", with_image(R"({"id": 1, "file_name": "", "width": 1, "height": 1})"),
       "images[0] (id 1): 'file_name' is empty"},
      // categories
      {"CategoryMissingName", with_category(R"({"id": 1})"),
       "categories[0] (id 1): missing key 'name'"},
      {"CategoryNullId", with_category(R"({"id": null, "name": "x"})"),
       "categories[0]: 'id' must be an integer, got null"},
      {"DuplicateCategoryId", doc(kImage, std::string(kCategory) + ", " + kCategory, kAnnotation),
       "categories[1] (id 1): duplicate category id 1 (also categories[0])"},
      // annotations
      {"AnnotationStringId",
       with_annotation(R"({"id": "7", "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]})"),
       "annotations[0]: 'id' must be an integer, got a string"},
      {"DuplicateAnnotationId",
       doc(kImage, kCategory, std::string(kAnnotation) + ", " + kAnnotation),
       "annotations[1] (id 1): duplicate annotation id 1"},
      {"AnnotationMissingImageId",
       with_annotation(R"({"id": 3, "category_id": 1, "bbox": [1, 2, 3, 4]})"),
       "annotations[0] (id 3): missing key 'image_id'"},
      {"AnnotationMissingBbox", with_annotation(R"({"id": 3, "image_id": 1, "category_id": 1})"),
       "annotations[0] (id 3): missing key 'bbox'"},
      {"UnknownImage",
       with_annotation(R"({"id": 3, "image_id": 99, "category_id": 1, "bbox": [1, 2, 3, 4]})"),
       "annotations[0] (id 3): image_id 99 is not in 'images'"},
      {"UnknownCategory",
       with_annotation(R"({"id": 3, "image_id": 1, "category_id": 42, "bbox": [1, 2, 3, 4]})"),
       "annotations[0] (id 3): category_id 42 is not in 'categories'"},
      {"BboxLength3", with_bbox("[1, 2, 3]"),
       "annotations[0] (id 1): 'bbox' must have 4 numbers [x, y, width, height], got 3"},
      {"BboxNotArray", with_bbox(R"({"x": 1})"),
       "annotations[0] (id 1): 'bbox' must be an array [x, y, width, height], got an object"},
      {"BboxNull", with_bbox("null"), "'bbox' must be an array [x, y, width, height], got null"},
      {"BboxStringValue", with_bbox(R"([1, "2", 3, 4])"),
       "annotations[0] (id 1): 'bbox' must be a number, got a string"},
      {"AreaString",
       with_annotation(
           R"({"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "area": "x"})"),
       "annotations[0] (id 1): 'area' must be a number, got a string"},
      {"IscrowdTwo",
       with_annotation(
           R"({"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "iscrowd": 2})"),
       "annotations[0] (id 1): 'iscrowd' must be 0 or 1, got 2"},
  };
}

class CocoMalformed : public ::testing::TestWithParam<Case> {};

TEST_P(CocoMalformed, RaisesErrorNamingTheProblem) {
  const Case& c = GetParam();
  for (bool sanitize : {true, false}) {  // training and evaluation validate alike
    CocoReadOptions options;
    options.sanitize_boxes = sanitize;
    try {
      parse_coco(c.json, "crafted.json", options);
      ADD_FAILURE() << "no error for: " << c.json;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(c.message), std::string::npos)
          << "  got: " << e.what() << "\n want: " << c.message;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Table, CocoMalformed, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return info.param.name;
                         });

// Every prefix of a valid file, and the file with each byte replaced by a few troublesome
// ones: the reader must load it or throw Error, never crash (the sanitizer build runs this).
TEST(CocoMalformed, TruncatedAndCorruptedFilesNeverCrash) {
  const std::string valid = doc(
      std::string(kImage) + ", " + R"({"id": 2, "file_name": "b.jpg", "width": 9, "height": 9})",
      kCategory,
      std::string(kAnnotation) + R"(, {"id": 2, "image_id": 2, )"
                                 R"("category_id": 1, "bbox": [0.5, 1e3, -2, 4], "iscrowd": 1})");
  std::size_t errors = 0;
  auto attempt = [&](const std::string& text) {
    try {
      parse_coco(text, "crafted.json");
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).rfind("crafted.json: ", 0), 0u) << e.what();
      ++errors;
    }
  };
  for (std::size_t n = 0; n < valid.size(); ++n) attempt(valid.substr(0, n));
  EXPECT_EQ(errors, valid.size()) << "a strict prefix of a json object is never valid";
  for (std::size_t i = 0; i < valid.size(); ++i) {
    for (char c : {'"', '}', ']', ',', '9', '-', '\0', '\xff'}) {
      std::string text = valid;
      text[i] = c;
      attempt(text);
    }
  }
}

TEST(CocoMalformedTable, HasAtLeastFifteenRows) { EXPECT_GE(cases().size(), 15u); }

TEST(CocoMalformedTable, BaseDocumentIsValid) {
  // Guards the table: each row breaks exactly one thing in an otherwise valid file.
  const CocoDataset ds = parse_coco(doc(kImage, kCategory, kAnnotation), "crafted.json");
  EXPECT_EQ(ds.images.size(), 1u);
  EXPECT_EQ(ds.annotations.size(), 1u);
}

}  // namespace
}  // namespace focaldet::data
