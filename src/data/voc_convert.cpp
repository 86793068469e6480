// VOC xml is read with tinyxml2 (Debian's libtinyxml2-dev): small, DOM, reports the line of a
// syntax error. The json is built with nlohmann (speed is irrelevant for a one-off conversion;
// its output round-trips every double exactly).
#include "data/voc_convert.h"

#include <tinyxml2.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>

#include "common/atomic_file.h"
#include "common/error.h"
#include "data/image_path.h"

namespace focaldet::data {
namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

// Bound on every size and coordinate read from VOC: far beyond any real image, and small
// enough that w, h and area = w * h stay finite (area <= (2e9 + 1)^2 ~ 4e18), so the json
// never gets a null (nlohmann writes inf as null) that read_coco would refuse.
constexpr double kMaxPixels = 1e9;

struct VocObject {
  std::string name;
  double xmin = 0, ymin = 0, xmax = 0, ymax = 0;
  bool difficult = false;
};

// The COCO box of a VOC object: 1-based inclusive corners to 0-based [x, y, w, h]
// (data/bccd/README.md).
struct CocoBox {
  double x, y, w, h, area;
};
CocoBox coco_box(const VocObject& o) {
  const double w = o.xmax - o.xmin + 1, h = o.ymax - o.ymin + 1;
  return {o.xmin - 1, o.ymin - 1, w, h, w * h};
}

struct VocImage {
  std::string file_name;
  int width = 0, height = 0;
  std::vector<VocObject> objects;
};

std::string trim(const std::string& s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return {};
  const auto last = s.find_last_not_of(" \t\r\n");
  return s.substr(first, last - first + 1);
}

// JSON text must be UTF-8 and nlohmann's dump() throws on anything else (exit 1, no file
// named). tinyxml2 ignores an xml's encoding declaration and passes bytes through, so a
// Latin-1 export would get that far: check the strings that go into the json when read.
void check_utf8(const std::string& text, const std::string& what) {
  try {
    (void)ordered_json(text).dump();
  } catch (const nlohmann::json::type_error&) {
    throw Error(what + " is not valid UTF-8 (the json must be; re-save the file as UTF-8)");
  }
}

// Text of child `tag` of `parent`, trimmed; throws naming the file and `what` when absent.
std::string child_text(const tinyxml2::XMLElement* parent, const char* tag,
                       const std::string& where) {
  const tinyxml2::XMLElement* e = parent->FirstChildElement(tag);
  if (e == nullptr) throw Error(where + ": missing <" + tag + ">");
  const char* text = e->GetText();
  const std::string t = trim(text == nullptr ? "" : text);
  if (t.empty()) throw Error(where + ": <" + tag + "> is empty");
  return t;
}

// A plain decimal: optional sign, digits, optional fraction, optional exponent ("12", "-3.5",
// "12.", ".5", "1e3"). strtod alone would also take hex ("0x280" = 640), "inf" and "nan",
// which no VOC tool writes: such text is a corrupt or hand-edited file, not a number.
bool is_plain_decimal(const std::string& t) {
  const auto digit = [&t](std::size_t i) { return i < t.size() && t[i] >= '0' && t[i] <= '9'; };
  std::size_t i = 0, digits = 0;
  if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
  for (; digit(i); ++i) ++digits;
  if (i < t.size() && t[i] == '.') {
    for (++i; digit(i); ++i) ++digits;
  }
  if (digits == 0) return false;
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
    if (!digit(i)) return false;
    while (digit(i)) ++i;
  }
  return i == t.size();
}

// A plain decimal (is_plain_decimal) within +-kMaxPixels. from_chars: no locale, and it says
// when the text overflows a double (1e999).
double child_number(const tinyxml2::XMLElement* parent, const char* tag, const std::string& where) {
  const std::string t = child_text(parent, tag, where);
  if (!is_plain_decimal(t)) {
    throw Error(where + ": <" + tag + "> is not a plain decimal number: '" + t + "'");
  }
  const char* first = t.c_str() + (t[0] == '+' ? 1 : 0);  // from_chars takes no '+'
  double v = 0;
  const auto [end, err] = std::from_chars(first, t.c_str() + t.size(), v);
  if (err == std::errc::result_out_of_range || !(std::fabs(v) <= kMaxPixels)) {
    throw Error(where + ": <" + tag + "> is out of range: '" + t +
                "' (VOC sizes and coordinates must lie within +-1e9 pixels)");
  }
  if (err != std::errc() || end != t.c_str() + t.size()) {
    throw Error(where + ": <" + tag + "> is not a plain decimal number: '" + t + "'");
  }
  return v;
}

// <difficult>: 0 or 1; absent or empty means 0, as in the VOC devkit's reader.
bool child_difficult(const tinyxml2::XMLElement* object, const std::string& where) {
  const tinyxml2::XMLElement* e = object->FirstChildElement("difficult");
  const std::string t = e && e->GetText() ? trim(e->GetText()) : "";
  if (t.empty() || t == "0") return false;
  if (t == "1") return true;
  throw Error(where + ": <difficult> must be 0 or 1, got '" + t + "'");
}

int child_size(const tinyxml2::XMLElement* parent, const char* tag, const std::string& where) {
  const double v = child_number(parent, tag, where);
  if (v < 1 || v != std::floor(v)) {  // child_number bounds it by kMaxPixels
    throw Error(where + ": <" + tag + "> must be a positive whole number of pixels, got " +
                child_text(parent, tag, where));
  }
  return static_cast<int>(v);
}

VocImage read_voc_xml(const fs::path& xml_path, const std::string& image_id,
                      const fs::path& image_dir) {
  const std::string file = xml_path.string();
  tinyxml2::XMLDocument doc;
  if (doc.LoadFile(file.c_str()) != tinyxml2::XML_SUCCESS) {
    // ErrorStr(): "Error=XML_ERROR_MISMATCHED_ELEMENT ErrorID=14 (0xe) Line number=1: ...".
    throw Error(file + ": malformed XML at line " + std::to_string(doc.ErrorLineNum()) + " (" +
                doc.ErrorStr() + ")");
  }
  const tinyxml2::XMLElement* root = doc.FirstChildElement("annotation");
  if (root == nullptr) throw Error(file + ": no <annotation> root element");

  VocImage image;
  // <filename> as written when it names a file (some VOC exports carry a stale name there);
  // otherwise the list id + .jpg, the VOC convention.
  const tinyxml2::XMLElement* filename = root->FirstChildElement("filename");
  const std::string written = filename && filename->GetText() ? trim(filename->GetText()) : "";
  const std::string by_id = image_id + ".jpg";
  std::error_code ec;
  if (!written.empty()) {
    // The name goes into the json as the image's file_name, which read_coco rejects when it
    // leaves the image root: say so here, naming the xml, rather than at training time. The
    // reader's own rule (data/image_path.h), so that both refuse the same names.
    const std::string problem = image_path_problem(written);
    if (!problem.empty()) {
      throw Error(file + ": <filename> '" + written + "' is not a path inside JPEGImages/: it " +
                  problem);
    }
  }
  if (!written.empty() &&
      (fs::exists(image_dir / written, ec) || !fs::exists(image_dir / by_id, ec))) {
    image.file_name = written;
  } else {
    image.file_name = by_id;
  }
  check_utf8(image.file_name, file + ": the image file name");
  const tinyxml2::XMLElement* size = root->FirstChildElement("size");
  if (size == nullptr) throw Error(file + ": missing <size>");
  image.width = child_size(size, "width", file + ": <size>");
  image.height = child_size(size, "height", file + ": <size>");

  int index = 0;
  for (const tinyxml2::XMLElement* o = root->FirstChildElement("object"); o != nullptr;
       o = o->NextSiblingElement("object"), ++index) {
    std::string where = file + ": object " + std::to_string(index);
    VocObject obj;
    obj.name = child_text(o, "name", where);
    check_utf8(obj.name, where + ": <name>");
    where += " (" + obj.name + ")";
    const tinyxml2::XMLElement* box = o->FirstChildElement("bndbox");
    if (box == nullptr) throw Error(where + ": missing <bndbox>");
    obj.xmin = child_number(box, "xmin", where);
    obj.ymin = child_number(box, "ymin", where);
    obj.xmax = child_number(box, "xmax", where);
    obj.ymax = child_number(box, "ymax", where);
    if (obj.xmax < obj.xmin || obj.ymax < obj.ymin) {
      std::ostringstream msg;
      msg << where << ": box corners are reversed: xmin " << obj.xmin << ", ymin " << obj.ymin
          << ", xmax " << obj.xmax << ", ymax " << obj.ymax;
      throw Error(msg.str());
    }
    // Cannot fail within kMaxPixels; kept so that a wider bound can never write a null.
    if (!std::isfinite(coco_box(obj).area)) {
      std::ostringstream msg;
      msg << where << ": box area overflows: xmin " << obj.xmin << ", ymin " << obj.ymin
          << ", xmax " << obj.xmax << ", ymax " << obj.ymax;
      throw Error(msg.str());
    }
    obj.difficult = child_difficult(o, where);
    image.objects.push_back(std::move(obj));
  }
  return image;
}

// Image ids of ImageSets/Main/<split>.txt in order (the first token of each non-empty line).
std::vector<std::string> read_split_list(const fs::path& list_path) {
  std::ifstream in(list_path);
  if (!in) throw Error(list_path.string() + ": cannot open: " + std::strerror(errno));
  std::vector<std::string> ids;
  std::set<std::string> seen;
  std::string line;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    std::istringstream tokens(line);
    std::string id;
    if (!(tokens >> id)) continue;
    if (!seen.insert(id).second) {
      throw Error(list_path.string() + ":" + std::to_string(line_no) + ": image '" + id +
                  "' is listed twice");
    }
    ids.push_back(id);
  }
  if (ids.empty()) throw Error(list_path.string() + ": lists no images");
  return ids;
}

std::vector<std::string> find_splits(const fs::path& main_dir) {
  std::vector<std::string> splits;
  try {
    for (const fs::directory_entry& e : fs::directory_iterator(main_dir)) {
      const fs::path& p = e.path();
      if (e.is_regular_file() && p.extension() == ".txt" &&
          p.stem().string().find('_') == std::string::npos) {
        splits.push_back(p.stem().string());
      }
    }
  } catch (const fs::filesystem_error& e) {
    throw Error(main_dir.string() + ": cannot list the split files (" + e.code().message() + ")");
  }
  std::sort(splits.begin(), splits.end());
  if (splits.empty()) throw Error(main_dir.string() + ": no split lists (<split>.txt)");
  return splits;
}

// Most frequent first, ties by name (see VocConvertOptions::categories).
std::vector<std::string> categories_by_count(const std::map<std::string, std::size_t>& counts) {
  std::vector<std::pair<std::string, std::size_t>> sorted(counts.begin(), counts.end());
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  std::vector<std::string> names;
  for (const auto& [name, count] : sorted) names.push_back(name);
  return names;
}

ordered_json split_to_coco(const std::vector<std::string>& ids,
                           const std::map<std::string, VocImage>& xml,
                           const std::vector<std::string>& categories, bool difficult_as_boxes,
                           VocSplitSummary& summary) {
  std::unordered_map<std::string, int> category_id;
  ordered_json cats = ordered_json::array();
  for (std::size_t i = 0; i < categories.size(); ++i) {
    category_id[categories[i]] = static_cast<int>(i) + 1;
    cats.push_back({{"id", i + 1}, {"name", categories[i]}, {"supercategory", "none"}});
  }
  ordered_json images = ordered_json::array(), annotations = ordered_json::array();
  int64_t image_id = 0, annotation_id = 0;
  for (const std::string& id : ids) {
    const VocImage& image = xml.at(id);
    ++image_id;
    images.push_back({{"id", image_id},
                      {"file_name", image.file_name},
                      {"width", image.width},
                      {"height", image.height}});
    for (const VocObject& o : image.objects) {
      const CocoBox b = coco_box(o);
      if (o.difficult) ++summary.num_difficult;
      // Difficult: iscrowd 1 unless asked otherwise (VocConvertOptions::difficult_as_boxes).
      const int iscrowd = o.difficult && !difficult_as_boxes ? 1 : 0;
      annotations.push_back({{"id", ++annotation_id},
                             {"image_id", image_id},
                             {"category_id", category_id.at(o.name)},
                             {"bbox", {b.x, b.y, b.w, b.h}},
                             {"area", b.area},
                             {"iscrowd", iscrowd}});
    }
  }
  summary.num_images = images.size();
  summary.num_annotations = annotations.size();
  return ordered_json{{"info", {{"description", "converted from Pascal VOC"}}},
                      {"images", std::move(images)},
                      {"annotations", std::move(annotations)},
                      {"categories", std::move(cats)}};
}

}  // namespace

std::vector<VocSplitSummary> convert_voc(const std::string& voc_root, const std::string& out_dir,
                                         const VocConvertOptions& options) {
  const fs::path root(voc_root);
  const fs::path annotation_dir = root / "Annotations", main_dir = root / "ImageSets" / "Main";
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw Error(voc_root + ": not a directory");
  if (!fs::is_directory(annotation_dir, ec)) {
    throw Error(voc_root + ": no Annotations/ folder (is this a Pascal VOC root?)");
  }
  if (!fs::is_directory(main_dir, ec)) {
    throw Error(voc_root + ": no ImageSets/Main/ folder (is this a Pascal VOC root?)");
  }
  const std::vector<std::string> splits =
      options.splits.empty() ? find_splits(main_dir) : options.splits;

  // Read every list and xml before writing anything.
  std::vector<std::vector<std::string>> split_ids;
  std::map<std::string, VocImage> xml;
  std::map<std::string, std::size_t> counts;
  // A split or image id is a file name inside ImageSets/Main/ or Annotations/, never a path.
  auto plain_name = [](const std::string& name) {
    return !name.empty() && name != "." && name != ".." &&
           name.find_first_of("/\\") == std::string::npos;
  };
  for (const std::string& split : splits) {
    if (!plain_name(split)) throw Error("splits: '" + split + "' is not a split name");
    const fs::path list = main_dir / (split + ".txt");
    if (!fs::is_regular_file(list, ec)) throw Error(list.string() + ": no such split list");
    split_ids.push_back(read_split_list(list));
    for (const std::string& id : split_ids.back()) {
      if (xml.count(id)) continue;
      if (!plain_name(id)) {
        throw Error(list.string() + ": image id '" + id + "' is not a file name in Annotations/");
      }
      const fs::path xml_path = annotation_dir / (id + ".xml");
      if (!fs::is_regular_file(xml_path, ec)) {
        throw Error(list.string() + ": image '" + id + "' has no " + xml_path.string());
      }
      VocImage image = read_voc_xml(xml_path, id, root / "JPEGImages");
      for (const VocObject& o : image.objects) ++counts[o.name];
      xml.emplace(id, std::move(image));
    }
  }
  std::vector<std::string> categories = options.categories;
  for (std::size_t i = 0; i < categories.size(); ++i) {
    // A repeated name would get two ids, one of them never used.
    if (categories[i].empty())
      throw Error("categories: name " + std::to_string(i + 1) + " is empty");
    check_utf8(categories[i], "categories: name " + std::to_string(i + 1));
    if (std::find(categories.begin(), categories.begin() + i, categories[i]) !=
        categories.begin() + i) {
      throw Error("categories: '" + categories[i] + "' is listed twice");
    }
  }
  if (categories.empty()) {
    categories = categories_by_count(counts);
  } else {
    for (const auto& [name, count] : counts) {
      if (std::find(categories.begin(), categories.end(), name) == categories.end()) {
        // Name the first file that uses it, so the typo can be found.
        for (const auto& [id, image] : xml) {
          for (const VocObject& o : image.objects) {
            if (o.name == name) {
              throw Error((annotation_dir / (id + ".xml")).string() + ": class '" + name +
                          "' is not in the given categories");
            }
          }
        }
      }
    }
  }

  // Every json is built before the first is written, so that a failure here leaves OUT_DIR
  // as it was; only a failing write (disk full) can leave the earlier splits written.
  std::vector<VocSplitSummary> summaries;
  std::vector<std::string> texts;
  for (std::size_t s = 0; s < splits.size(); ++s) {
    VocSplitSummary summary;
    summary.split = splits[s];
    summary.path = (fs::path(out_dir) / ("instances_" + splits[s] + ".json")).string();
    texts.push_back(
        split_to_coco(split_ids[s], xml, categories, options.difficult_as_boxes, summary).dump());
    summaries.push_back(std::move(summary));
  }
  fs::create_directories(out_dir, ec);
  if (ec) throw Error(out_dir + ": cannot create: " + ec.message());
  for (std::size_t s = 0; s < splits.size(); ++s) {
    write_file_atomic(summaries[s].path, texts[s]);  // a reader never sees half a file
  }
  return summaries;
}

}  // namespace focaldet::data
