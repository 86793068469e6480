// convert_voc: BCCD converts to exactly the shipped COCO json; crafted VOC trees check the box
// rule, category order and the errors; the focaldet binary exits non-zero with the message.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
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
  // One object: "name xmin ymin xmax ymax" as VOC writes it.
  static std::string object(const std::string& name, const std::string& xmin,
                            const std::string& ymin, const std::string& xmax,
                            const std::string& ymax) {
    return "<object><name>" + name + "</name><difficult>0</difficult><bndbox><xmin>" + xmin +
           "</xmin><ymin>" + ymin + "</ymin><xmax>" + xmax + "</xmax><ymax>" + ymax +
           "</ymax></bndbox></object>";
  }
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
    EXPECT_NE(e.find("a.xml: object 0 (cat): <ymin> is not a finite number: 'one'"),
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
