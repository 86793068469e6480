// convert_voc: BCCD converts to exactly the shipped COCO json; crafted VOC trees check the box
// rule, difficult objects, category order and the errors; the focaldet binary exits non-zero
// with the message.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "data/coco_dataset.h"
#include "data/voc_convert.h"
#include "run_focaldet.h"
#include "support/oracle.h"

namespace focaldet::data {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json load_json(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in);
}

// A VOC tree under a fresh temp dir; removed at the end of the test.
class VocTree {
 public:
  VocTree() : root_(test::make_temp_dir("focaldet_voc_")) {
    fs::create_directories(root_ + "/Annotations");
    fs::create_directories(root_ + "/ImageSets/Main");
  }
  ~VocTree() { fs::remove_all(root_); }
  const std::string& root() const { return root_; }
  std::string out() const { return root_ + "/out"; }

  void write(const std::string& relative, const std::string& text) const {
    std::ofstream(root_ + "/" + relative) << text;
  }
  // One object: "name xmin ymin xmax ymax" as VOC writes it; `difficult` "" leaves the tag out.
  static std::string object(const std::string& name, const std::string& xmin,
                            const std::string& ymin, const std::string& xmax,
                            const std::string& ymax, const std::string& difficult = "0") {
    return "<object><name>" + name + "</name>" +
           (difficult.empty() ? "" : "<difficult>" + difficult + "</difficult>") +
           "<bndbox><xmin>" + xmin + "</xmin><ymin>" + ymin + "</ymin><xmax>" + xmax +
           "</xmax><ymax>" + ymax + "</ymax></bndbox></object>";
  }
  // An xml whose size is given as text (`width`, `height` written as they are).
  void write_xml_sized(const std::string& id, const std::string& width, const std::string& height,
                       const std::string& objects) const {
    write("Annotations/" + id + ".xml",
          "<annotation><filename>" + id + ".jpg</filename><size><width>" + width +
              "</width><height>" + height + "</height></size>" + objects + "</annotation>");
  }
  // True when the failed conversion left nothing in OUT_DIR (no json, no temp file).
  bool wrote_nothing() const { return !fs::exists(out()) || fs::is_empty(out()); }
  void write_xml(const std::string& id, const std::string& objects, int width = 64,
                 int height = 48) const {
    write("Annotations/" + id + ".xml",
          "<annotation>\n<filename>" + id + ".jpg</filename>\n<size><width>" +
              std::to_string(width) + "</width><height>" + std::to_string(height) +
              "</height><depth>3</depth></size>\n" + objects + "\n</annotation>\n");
  }

 private:
  std::string root_;
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(VocConvert, BccdEqualsShippedCocoJson) {
  const std::string out = test::make_temp_dir("focaldet_voc_bccd_");
  const auto summaries = convert_voc(test::source_path("data/bccd"), out);
  ASSERT_EQ(summaries.size(), 4u);  // test, train, trainval, val
  for (const std::string split : {"train", "val", "trainval", "test"}) {
    const json got = load_json(out + "/instances_" + split + ".json");
    const json want = load_json(test::source_path("data/bccd/coco/instances_" + split + ".json"));
    // json equality compares numbers by value (67 == 67.0) and objects key by key.
    EXPECT_EQ(got["images"], want["images"]) << split;
    EXPECT_EQ(got["categories"], want["categories"]) << split;
    ASSERT_EQ(got["annotations"].size(), want["annotations"].size()) << split;
    for (std::size_t i = 0; i < want["annotations"].size(); ++i) {
      ASSERT_EQ(got["annotations"][i], want["annotations"][i]) << split << " annotation " << i;
    }
    // And the converted file reads back with read_coco to the same dataset.
    CocoReadOptions options;
    options.sanitize_boxes = false;
    options.image_root = test::source_path("data/bccd/JPEGImages");
    const CocoDataset ds = read_coco(out + "/instances_" + split + ".json", options);
    EXPECT_EQ(ds.images.size(), want["images"].size());
  }
  for (const auto& e : fs::directory_iterator(out)) {
    EXPECT_EQ(e.path().string().find(".tmp"), std::string::npos) << "left over: " << e.path();
  }
  fs::remove_all(out);
}

TEST(VocConvert, BoxRuleAndIdsOnACraftedTree) {
  VocTree voc;
  voc.write_xml("b", VocTree::object("dog", "1", "1", "10", "20") +
                         VocTree::object("cat", "5.5", "6", "7.5", "6"));
  voc.write_xml("a", VocTree::object("cat", "3", "4", "3", "9"));
  voc.write("ImageSets/Main/train.txt", "b\n\na\n");
  const auto summaries = convert_voc(voc.root(), voc.out());
  ASSERT_EQ(summaries.size(), 1u);
  EXPECT_EQ(summaries[0].num_images, 2u);
  EXPECT_EQ(summaries[0].num_annotations, 3u);
  const json got = load_json(voc.out() + "/instances_train.json");
  // Split order gives image ids; cat (2 boxes) is more frequent than dog (1): id 1.
  EXPECT_EQ(got["images"][0]["file_name"], "b.jpg");
  EXPECT_EQ(got["images"][0]["id"], 1);
  EXPECT_EQ(got["images"][1]["file_name"], "a.jpg");
  EXPECT_EQ(got["images"][1]["width"], 64);
  EXPECT_EQ(got["categories"][0]["name"], "cat");
  EXPECT_EQ(got["categories"][1]["name"], "dog");
  // dog: corners 1..10 x 1..20 inclusive -> x 0, y 0, w 10, h 20, area 200.
  const json& dog = got["annotations"][0];
  EXPECT_EQ(dog["id"], 1);
  EXPECT_EQ(dog["image_id"], 1);
  EXPECT_EQ(dog["category_id"], 2);
  EXPECT_DOUBLE_EQ(dog["bbox"][0].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(dog["bbox"][1].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(dog["bbox"][2].get<double>(), 10.0);
  EXPECT_DOUBLE_EQ(dog["bbox"][3].get<double>(), 20.0);
  EXPECT_DOUBLE_EQ(dog["area"].get<double>(), 200.0);
  EXPECT_EQ(dog["iscrowd"], 0);
  // cat in b: x 4.5, y 5, w 7.5 - 5.5 + 1 = 3, h 1 (a one-pixel-high box is kept).
  const json& cat = got["annotations"][1];
  EXPECT_DOUBLE_EQ(cat["bbox"][0].get<double>(), 4.5);
  EXPECT_DOUBLE_EQ(cat["bbox"][2].get<double>(), 3.0);
  EXPECT_DOUBLE_EQ(cat["bbox"][3].get<double>(), 1.0);
  EXPECT_EQ(got["annotations"][2]["image_id"], 2);
  EXPECT_EQ(got["annotations"][2]["id"], 3);
}

TEST(VocConvert, ExplicitCategoriesFixTheIds) {
  VocTree voc;
  voc.write_xml("a", VocTree::object("cat", "1", "1", "2", "2"));
  voc.write("ImageSets/Main/val.txt", "a\n");
  VocConvertOptions options;
  options.categories = {"dog", "cat"};
  convert_voc(voc.root(), voc.out(), options);
  const json got = load_json(voc.out() + "/instances_val.json");
  EXPECT_EQ(got["categories"].size(), 2u);  // dog listed although unused
  EXPECT_EQ(got["annotations"][0]["category_id"], 2);
}

TEST(VocConvert, PerClassListsAreNotSplits) {
  VocTree voc;
  voc.write_xml("a", VocTree::object("cat", "1", "1", "2", "2"));
  voc.write("ImageSets/Main/train.txt", "a\n");
  voc.write("ImageSets/Main/cat_train.txt", "a  1\n");
  const auto summaries = convert_voc(voc.root(), voc.out());
  ASSERT_EQ(summaries.size(), 1u);
  EXPECT_EQ(summaries[0].split, "train");
}

TEST(VocConvert, BadInputNamesTheFile) {
  {
    VocTree voc;
    voc.write("ImageSets/Main/train.txt", "a\n");
    voc.write("Annotations/a.xml", "<annotation>\n<size><width>5</width>\n<height>4</size>");
    const std::string e = error_of([&] { convert_voc(voc.root(), voc.out()); });
    EXPECT_NE(e.find("Annotations/a.xml: malformed XML at line 3"), std::string::npos) << e;
    EXPECT_NE(e.find("MISMATCHED_ELEMENT"), std::string::npos) << e;
  }
  {
    VocTree voc;
    voc.write("ImageSets/Main/train.txt", "a\nmissing\n");
    voc.write_xml("a", "");
    const std::string e = error_of([&] { convert_voc(voc.root(), voc.out()); });
    EXPECT_NE(e.find("train.txt: image 'missing' has no"), std::string::npos) << e;
    EXPECT_FALSE(fs::exists(voc.out() + "/instances_train.json")) << "wrote despite the error";
  }
  {
    VocTree voc;
    voc.write("ImageSets/Main/train.txt", "a\n");
    voc.write_xml("a", VocTree::object("cat", "1", "1", "2", "2") +
                           VocTree::object("dog", "9", "1", "2", "2"));
    const std::string e = error_of([&] { convert_voc(voc.root(), voc.out()); });
    EXPECT_NE(e.find("a.xml: object 1 (dog): box corners are reversed"), std::string::npos) << e;
  }
  {
    VocTree voc;
    voc.write("ImageSets/Main/train.txt", "a\n");
    voc.write_xml("a", VocTree::object("cat", "1", "one", "2", "2"));
    const std::string e = error_of([&] { convert_voc(voc.root(), voc.out()); });
    EXPECT_NE(e.find("a.xml: object 0 (cat): <ymin> is not a plain decimal number: 'one'"),
              std::string::npos)
        << e;
  }
  {
    VocTree voc;
    voc.write("ImageSets/Main/train.txt", "a\n");
    voc.write("Annotations/a.xml", "<annotation><object><name>x</name></object></annotation>");
    const std::string e = error_of([&] { convert_voc(voc.root(), voc.out()); });
    EXPECT_NE(e.find("a.xml: missing <size>"), std::string::npos) << e;
  }
  {
    VocTree voc;
    voc.write("ImageSets/Main/train.txt", "a\nb\na\n");
    const std::string e = error_of([&] { convert_voc(voc.root(), voc.out()); });
    EXPECT_NE(e.find("train.txt:3: image 'a' is listed twice"), std::string::npos) << e;
  }
  {
    VocTree voc;
    voc.write_xml("a", VocTree::object("cat", "1", "1", "2", "2"));
    voc.write("ImageSets/Main/train.txt", "a\n");
    VocConvertOptions options;
    options.categories = {"dog"};
    const std::string e = error_of([&] { convert_voc(voc.root(), voc.out(), options); });
    EXPECT_NE(e.find("a.xml: class 'cat' is not in the given categories"), std::string::npos) << e;
  }
  const std::string e = error_of([] { convert_voc("/nonexistent/voc", "/tmp/x"); });
  EXPECT_NE(e.find("/nonexistent/voc: not a directory"), std::string::npos) << e;
}

TEST(VocConvert, RepeatedCategoryIsAnError) {
  VocTree voc;
  voc.write_xml("a", VocTree::object("cat", "1", "1", "2", "2"));
  voc.write("ImageSets/Main/train.txt", "a\n");
  VocConvertOptions options;
  options.categories = {"cat", "dog", "cat"};
  const std::string e = error_of([&] { convert_voc(voc.root(), voc.out(), options); });
  EXPECT_NE(e.find("categories: 'cat' is listed twice"), std::string::npos) << e;
  EXPECT_FALSE(fs::exists(voc.out() + "/instances_train.json")) << "wrote despite the error";
}

TEST(VocConvert, FilenameOutsideTheImageRootIsAnError) {
  for (const std::string name : {"../a.jpg", "/etc/a.jpg", "sub/../../a.jpg"}) {
    VocTree voc;
    voc.write("Annotations/a.xml", "<annotation><filename>" + name +
                                       "</filename><size><width>5</width><height>4</height>"
                                       "</size></annotation>");
    voc.write("ImageSets/Main/train.txt", "a\n");
    const std::string e = error_of([&] { convert_voc(voc.root(), voc.out()); });
    EXPECT_NE(e.find("a.xml: <filename> '" + name + "' is not a path inside JPEGImages/"),
              std::string::npos)
        << e;
  }
}

// Issue 10: -1e308 / 1e308 made w = inf, 1e200 made w * h = inf; the json got null and exit 0.
TEST(VocConvert, CoordinatesBeyondTheBoundAreErrorsAndNothingIsWritten) {
  struct Case {
    std::vector<std::string> corners;  // xmin ymin xmax ymax
    std::string want;
  };
  const std::vector<Case> cases = {
      {{"-1e308", "1", "1e308", "2"}, "a.xml: object 0 (cat): <xmin> is out of range: '-1e308'"},
      {{"1", "1", "1e200", "1e200"}, "a.xml: object 0 (cat): <xmax> is out of range: '1e200'"},
      {{"1", "1", "1e999", "2"}, "a.xml: object 0 (cat): <xmax> is out of range: '1e999'"},
      {{"1", "1", "2", "1000000001"}, "a.xml: object 0 (cat): <ymax> is out of range"},
  };
  for (const Case& c : cases) {
    VocTree voc;
    voc.write("ImageSets/Main/train.txt", "a\n");
    voc.write_xml("a",
                  VocTree::object("cat", c.corners[0], c.corners[1], c.corners[2], c.corners[3]));
    const std::string e = error_of([&] { convert_voc(voc.root(), voc.out()); });
    EXPECT_NE(e.find(c.want), std::string::npos) << e;
    EXPECT_TRUE(voc.wrote_nothing()) << c.want;
  }
  {
    VocTree voc;  // the size too
    voc.write("ImageSets/Main/train.txt", "a\n");
    voc.write_xml_sized("a", "1e308", "4", "");
    const std::string e = error_of([&] { convert_voc(voc.root(), voc.out()); });
    EXPECT_NE(e.find("a.xml: <size>: <width> is out of range: '1e308'"), std::string::npos) << e;
    EXPECT_TRUE(voc.wrote_nothing());
  }
}

TEST(VocConvert, TheBoundItselfConvertsToFiniteNumbers) {
  VocTree voc;
  voc.write("ImageSets/Main/train.txt", "a\n");
  voc.write_xml("a", VocTree::object("cat", "-1e9", "-1e9", "1e9", "1e9"));
  convert_voc(voc.root(), voc.out());
  const json ann = load_json(voc.out() + "/instances_train.json")["annotations"][0];
  // w = h = 1e9 - (-1e9) + 1 = 2000000001, area = w * h (by hand), both exact in double.
  ASSERT_TRUE(ann["area"].is_number()) << ann;
  EXPECT_DOUBLE_EQ(ann["bbox"][2].get<double>(), 2000000001.0);
  EXPECT_DOUBLE_EQ(ann["area"].get<double>(), 2000000001.0 * 2000000001.0);
  CocoReadOptions options;
  options.sanitize_boxes = false;
  EXPECT_EQ(read_coco(voc.out() + "/instances_train.json", options).annotations.size(), 1u);
}

// Issue 10: strtod read "0x280" as 640.
TEST(VocConvert, OnlyPlainDecimalsAreNumbers) {
  for (const std::string bad : {"0x10", "0X1p4", "inf", "-nan", "1e", "--1", "1.2.3", "1 2", "."}) {
    VocTree voc;
    voc.write("ImageSets/Main/train.txt", "a\n");
    voc.write_xml("a", VocTree::object("cat", bad, "1", "20", "2"));
    const std::string e = error_of([&] { convert_voc(voc.root(), voc.out()); });
    EXPECT_NE(e.find("a.xml: object 0 (cat): <xmin> is not a plain decimal number: '" + bad + "'"),
              std::string::npos)
        << e;
    EXPECT_TRUE(voc.wrote_nothing()) << bad;
  }
  VocTree voc;
  voc.write("ImageSets/Main/train.txt", "a\n");
  voc.write_xml_sized("a", "0x280", "480", "");
  const std::string e = error_of([&] { convert_voc(voc.root(), voc.out()); });
  EXPECT_NE(e.find("a.xml: <size>: <width> is not a plain decimal number: '0x280'"),
            std::string::npos)
      << e;
}

TEST(VocConvert, PlainDecimalFormsAreRead) {
  VocTree voc;
  voc.write("ImageSets/Main/train.txt", "a\n");
  // xmin +3, ymin .5e1 = 5, xmax 1E1 = 10, ymax 6. = 6; width 6.4e1 = 64.
  voc.write_xml_sized("a", "6.4e1", " 48 ", VocTree::object("cat", "+3", ".5e1", "1E1", "6."));
  convert_voc(voc.root(), voc.out());
  const json got = load_json(voc.out() + "/instances_train.json");
  EXPECT_EQ(got["images"][0]["width"], 64);
  EXPECT_EQ(got["images"][0]["height"], 48);
  // x = 3 - 1, y = 5 - 1, w = 10 - 3 + 1, h = 6 - 5 + 1.
  const json& bbox = got["annotations"][0]["bbox"];
  EXPECT_DOUBLE_EQ(bbox[0].get<double>(), 2.0);
  EXPECT_DOUBLE_EQ(bbox[1].get<double>(), 4.0);
  EXPECT_DOUBLE_EQ(bbox[2].get<double>(), 8.0);
  EXPECT_DOUBLE_EQ(bbox[3].get<double>(), 2.0);
}

// VOC's evaluation ignores difficult objects; COCO's ignores crowd regions.
TEST(VocConvert, DifficultObjectsAreCrowdRegionsByDefault) {
  VocTree voc;
  voc.write("ImageSets/Main/train.txt", "a\n");
  voc.write_xml("a", VocTree::object("cat", "1", "1", "10", "10") +
                         VocTree::object("cat", "5", "5", "20", "20", "1") +
                         VocTree::object("dog", "2", "2", "4", "4", /*difficult=*/""));
  const auto summaries = convert_voc(voc.root(), voc.out());
  ASSERT_EQ(summaries.size(), 1u);
  EXPECT_EQ(summaries[0].num_annotations, 3u);
  EXPECT_EQ(summaries[0].num_difficult, 1u);
  const json got = load_json(voc.out() + "/instances_train.json");
  EXPECT_EQ(got["annotations"][0]["iscrowd"], 0);
  EXPECT_EQ(got["annotations"][1]["iscrowd"], 1);
  EXPECT_EQ(got["annotations"][2]["iscrowd"], 0);  // no <difficult>: not difficult
  EXPECT_DOUBLE_EQ(got["annotations"][1]["bbox"][2].get<double>(), 16.0);  // the box is kept
  // And the reader takes it as a crowd region (training ignores it, evaluation too).
  const CocoDataset ds = read_coco(voc.out() + "/instances_train.json");
  ASSERT_EQ(ds.annotations.size(), 3u);
  EXPECT_FALSE(ds.annotations[0].iscrowd);
  EXPECT_TRUE(ds.annotations[1].iscrowd);
}

TEST(VocConvert, DifficultAsBoxesKeepsThemAsOrdinaryBoxes) {
  VocTree voc;
  voc.write("ImageSets/Main/train.txt", "a\n");
  voc.write_xml("a", VocTree::object("cat", "5", "5", "20", "20", "1"));
  VocConvertOptions options;
  options.difficult_as_boxes = true;
  const auto summaries = convert_voc(voc.root(), voc.out(), options);
  EXPECT_EQ(summaries[0].num_difficult, 1u);  // still counted, for the log
  EXPECT_EQ(load_json(voc.out() + "/instances_train.json")["annotations"][0]["iscrowd"], 0);
}

TEST(VocConvert, DifficultMustBeZeroOrOne) {
  for (const std::string bad : {"2", "yes", "0x1"}) {
    VocTree voc;
    voc.write("ImageSets/Main/train.txt", "a\n");
    voc.write_xml("a", VocTree::object("cat", "1", "1", "2", "2", bad));
    const std::string e = error_of([&] { convert_voc(voc.root(), voc.out()); });
    EXPECT_NE(e.find("a.xml: object 0 (cat): <difficult> must be 0 or 1, got '" + bad + "'"),
              std::string::npos)
        << e;
  }
}

// Issue 10: "..\..\etc\passwd" passed convert and was refused by read_coco. Both now apply
// one rule (data/image_path.h): every name here fails in both, for the same reason.
TEST(VocConvert, FilenameIsRefusedExactlyWhenReadCocoRefusesIt) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"..\\..\\etc\\passwd", "escapes the image root ('..')"},
      {"sub\\..\\..\\a.jpg", "escapes the image root ('..')"},
      {"\\etc\\a.jpg", "is absolute; it must be relative to the image root"},
      {"../a.jpg", "escapes the image root ('..')"},
      {"/etc/a.jpg", "is absolute; it must be relative to the image root"},
  };
  for (const auto& [name, reason] : cases) {
    VocTree voc;
    voc.write("ImageSets/Main/train.txt", "a\n");
    voc.write("Annotations/a.xml", "<annotation><filename>" + name +
                                       "</filename><size><width>5</width><height>4</height>"
                                       "</size></annotation>");
    const std::string e = error_of([&] { convert_voc(voc.root(), voc.out()); });
    EXPECT_NE(
        e.find("a.xml: <filename> '" + name + "' is not a path inside JPEGImages/: it " + reason),
        std::string::npos)
        << e;
    EXPECT_TRUE(voc.wrote_nothing()) << name;
    const json coco = {{"images", {{{"id", 1}, {"file_name", name}, {"width", 5}, {"height", 4}}}},
                       {"annotations", json::array()},
                       {"categories", {{{"id", 1}, {"name", "cat"}}}}};
    const std::string r = error_of([&] { parse_coco(coco.dump(), "x.json"); });
    EXPECT_NE(r.find("'file_name' \"" + name + "\" " + reason), std::string::npos) << r;
  }
  // Names both accept: a sub-folder, and dots that are not a '..' component.
  for (const std::string name : {"sub/a.jpg", "a..b.jpg", "./a.jpg"}) {
    VocTree voc;
    voc.write("ImageSets/Main/train.txt", "a\n");
    voc.write("Annotations/a.xml", "<annotation><filename>" + name +
                                       "</filename><size><width>5</width><height>4</height>"
                                       "</size></annotation>");
    convert_voc(voc.root(), voc.out());
    EXPECT_EQ(load_json(voc.out() + "/instances_train.json")["images"][0]["file_name"], name);
  }
}

// tinyxml2 passes a Latin-1 export's bytes through; nlohmann's dump() then threw a type_error
// (exit 1) that named no file.
TEST(VocConvert, TextThatIsNotUtf8IsAnErrorNamingTheXml) {
  {
    VocTree voc;
    voc.write("ImageSets/Main/train.txt", "a\n");
    voc.write_xml("a", VocTree::object("caf\xe9", "1", "1", "2", "2"));
    const std::string e = error_of([&] { convert_voc(voc.root(), voc.out()); });
    EXPECT_NE(e.find("a.xml: object 0: <name> is not valid UTF-8"), std::string::npos) << e;
    EXPECT_TRUE(voc.wrote_nothing());
  }
  {
    VocTree voc;
    voc.write("ImageSets/Main/train.txt", "a\n");
    voc.write("Annotations/a.xml",
              "<annotation><filename>\xe9t\xe9.jpg</filename><size><width>5</width><height>4"
              "</height></size></annotation>");
    const std::string e = error_of([&] { convert_voc(voc.root(), voc.out()); });
    EXPECT_NE(e.find("a.xml: the image file name is not valid UTF-8"), std::string::npos) << e;
    EXPECT_TRUE(voc.wrote_nothing());
  }
}

TEST(VocConvert, SplitAndImageIdsThatArePathsAreErrors) {
  VocTree voc;
  voc.write_xml("a", VocTree::object("cat", "1", "1", "2", "2"));
  voc.write("ImageSets/Main/train.txt", "../../Annotations/a\n");
  std::string e = error_of([&] { convert_voc(voc.root(), voc.out()); });
  EXPECT_NE(e.find("train.txt: image id '../../Annotations/a' is not a file name in Annotations/"),
            std::string::npos)
      << e;
  VocConvertOptions options;
  options.splits = {"../Main/train"};
  e = error_of([&] { convert_voc(voc.root(), voc.out(), options); });
  EXPECT_NE(e.find("splits: '../Main/train' is not a split name"), std::string::npos) << e;
  EXPECT_FALSE(fs::exists(voc.out() + "/instances_train.json")) << "wrote despite the error";
}

TEST(VocConvert, ReplacesAnExistingOutput) {
  VocTree voc;
  voc.write_xml("a", VocTree::object("cat", "1", "1", "2", "2"));
  voc.write("ImageSets/Main/train.txt", "a\n");
  fs::create_directories(voc.out());
  std::ofstream(voc.out() + "/instances_train.json") << "old";
  convert_voc(voc.root(), voc.out());
  EXPECT_EQ(load_json(voc.out() + "/instances_train.json")["images"].size(), 1u);
}

using test::run_focaldet;

TEST(ConvertCli, ConvertsBccd) {
  const std::string out = test::make_temp_dir("focaldet_cli_");
  std::string log;
  EXPECT_EQ(
      run_focaldet("convert voc " + test::source_path("data/bccd") + " " + out + " --splits val",
                   &log),
      0)
      << log;
  const json got = load_json(out + "/instances_val.json");
  EXPECT_EQ(got["images"],
            load_json(test::source_path("data/bccd/coco/instances_val.json"))["images"]);
  fs::remove_all(out);
}

TEST(ConvertCli, MalformedXmlExitsWithTwoAndNamesTheFile) {
  VocTree voc;
  voc.write("ImageSets/Main/train.txt", "a\n");
  voc.write("Annotations/a.xml", "<annotation><size>");
  std::string log;
  EXPECT_EQ(run_focaldet("convert voc " + voc.root() + " " + voc.out(), &log), 2) << log;
  EXPECT_NE(log.find(voc.root() + "/Annotations/a.xml: malformed XML"), std::string::npos) << log;
}

TEST(ConvertCli, OverflowExitsWithTwoAndWritesNothing) {
  VocTree voc;
  voc.write("ImageSets/Main/train.txt", "a\n");
  voc.write_xml("a", VocTree::object("cat", "1", "1", "1e200", "1e200"));
  std::string log;
  EXPECT_EQ(run_focaldet("convert voc " + voc.root() + " " + voc.out(), &log), 2) << log;
  EXPECT_NE(log.find(voc.root() + "/Annotations/a.xml: object 0 (cat): <xmax> is out of range"),
            std::string::npos)
      << log;
  EXPECT_TRUE(voc.wrote_nothing());
}

TEST(ConvertCli, DifficultCountIsLogged) {
  VocTree voc;
  voc.write("ImageSets/Main/train.txt", "a\n");
  voc.write("ImageSets/Main/val.txt", "a\n");
  voc.write_xml("a", VocTree::object("cat", "1", "1", "2", "2", "1") +
                         VocTree::object("cat", "1", "1", "3", "3", "1") +
                         VocTree::object("cat", "1", "1", "4", "4"));
  std::string log;
  ASSERT_EQ(run_focaldet("convert voc " + voc.root() + " " + voc.out(), &log), 0) << log;
  EXPECT_NE(log.find("difficult objects (train 2, val 2) written as iscrowd 1 regions (VOC: not "
                     "counted in evaluation"),
            std::string::npos)
      << log;
  log.clear();
  ASSERT_EQ(
      run_focaldet("convert voc " + voc.root() + " " + voc.out() + " --difficult-as-boxes", &log),
      0)
      << log;
  EXPECT_NE(log.find("difficult objects (train 2, val 2) kept as ordinary boxes"),
            std::string::npos)
      << log;
  EXPECT_EQ(load_json(voc.out() + "/instances_val.json")["annotations"][0]["iscrowd"], 0);
  log.clear();
  ASSERT_EQ(run_focaldet("convert voc --help", &log), 0) << log;
  EXPECT_NE(log.find("--difficult-as-boxes"), std::string::npos) << log;
  EXPECT_NE(log.find("become iscrowd 1"), std::string::npos) << log;
}

TEST(ConvertCli, NotAVocRootExitsWithTwo) {
  const std::string dir = test::make_temp_dir("focaldet_cli_");
  std::string log;
  EXPECT_EQ(run_focaldet("convert voc " + dir + " " + dir + "/out", &log), 2) << log;
  EXPECT_NE(log.find("no Annotations/ folder"), std::string::npos) << log;
  fs::remove_all(dir);
}

TEST(ConvertCli, UnknownSplitExitsWithTwo) {
  std::string log;
  EXPECT_EQ(
      run_focaldet("convert voc " + test::source_path("data/bccd") + " /tmp/unused --splits nope",
                   &log),
      2)
      << log;
  EXPECT_NE(log.find("ImageSets/Main/nope.txt: no such split list"), std::string::npos) << log;
}

TEST(ConvertCli, MissingArgumentIsAUsageError) {
  std::string log;
  EXPECT_NE(run_focaldet("convert voc", &log), 0) << log;
  EXPECT_NE(log.find("VOC_ROOT is required"), std::string::npos) << log;
}

}  // namespace
}  // namespace focaldet::data
