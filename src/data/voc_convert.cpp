// VOC xml is read with tinyxml2 (Debian's libtinyxml2-dev): small, DOM, reports the line of a
// syntax error. The json is built with nlohmann (speed is irrelevant for a one-off conversion;
// its output round-trips every double exactly).
#include "data/voc_convert.h"

#include <tinyxml2.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
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

namespace focaldet::data {
namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

struct VocObject {
  std::string name;
  double xmin = 0, ymin = 0, xmax = 0, ymax = 0;
};

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

double child_number(const tinyxml2::XMLElement* parent, const char* tag, const std::string& where) {
  const std::string t = child_text(parent, tag, where);
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(t.c_str(), &end);
  if (end != t.c_str() + t.size() || errno == ERANGE || !std::isfinite(v)) {
    throw Error(where + ": <" + tag + "> is not a finite number: '" + t + "'");
  }
  return v;
}

int child_size(const tinyxml2::XMLElement* parent, const char* tag, const std::string& where) {
  const double v = child_number(parent, tag, where);
  if (v < 1 || v != std::floor(v) || v > 1e9) {
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
    // leaves the image root: say so here, naming the xml, rather than at training time.
    const fs::path p(written);
    bool escapes = p.is_absolute() || p.has_root_name() || p.has_root_directory();
    for (const fs::path& part : p) escapes |= part == "..";
    if (escapes) {
      throw Error(file + ": <filename> '" + written + "' is not a path inside JPEGImages/");
    }
  }
  if (!written.empty() &&
      (fs::exists(image_dir / written, ec) || !fs::exists(image_dir / by_id, ec))) {
    image.file_name = written;
  } else {
    image.file_name = by_id;
  }
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
                           const std::vector<std::string>& categories, VocSplitSummary& summary) {
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
      // 1-based inclusive corners to 0-based [x, y, w, h] (data/bccd/README.md).
      const double x = o.xmin - 1, y = o.ymin - 1;
      const double w = o.xmax - o.xmin + 1, h = o.ymax - o.ymin + 1;
      annotations.push_back({{"id", ++annotation_id},
                             {"image_id", image_id},
                             {"category_id", category_id.at(o.name)},
                             {"bbox", {x, y, w, h}},
                             {"area", w * h},
                             {"iscrowd", 0}});
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

  fs::create_directories(out_dir, ec);
  if (ec) throw Error(out_dir + ": cannot create: " + ec.message());
  std::vector<VocSplitSummary> summaries;
  for (std::size_t s = 0; s < splits.size(); ++s) {
    VocSplitSummary summary;
    summary.split = splits[s];
    summary.path = (fs::path(out_dir) / ("instances_" + splits[s] + ".json")).string();
    const ordered_json coco = split_to_coco(split_ids[s], xml, categories, summary);
    write_file_atomic(summary.path, coco.dump());  // a reader never sees half a file
    summaries.push_back(std::move(summary));
  }
  return summaries;
}

}  // namespace focaldet::data
