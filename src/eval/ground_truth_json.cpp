// Lenient COCO ground truth for `focaldet eval`. simdjson DOM, as data::read_coco, so the
// evaluation workload still parses well under a second; data::diagnose_json says where a
// malformed file breaks.
#include "eval/ground_truth_json.h"

#include <simdjson.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <unordered_map>

#include "common/error.h"
#include "data/json_diagnostics.h"

namespace focaldet::eval {
namespace {

namespace dom = simdjson::dom;

// "GT.json: annotations[5] (id 42)": built only when something is wrong.
struct Entry {
  const std::string* file;
  const char* section;
  std::size_t index;
  bool has_id = false;
  int64_t id = 0;

  [[noreturn]] void fail(const std::string& what) const {
    std::string w = *file + ": " + section + "[" + std::to_string(index) + "]";
    if (has_id) w += " (id " + std::to_string(id) + ")";
    throw Error(w + ": " + what);
  }
};

const char* type_name(dom::element_type t) {
  switch (t) {
    case dom::element_type::ARRAY:
      return "an array";
    case dom::element_type::OBJECT:
      return "an object";
    case dom::element_type::INT64:
    case dom::element_type::UINT64:
      return "an integer";
    case dom::element_type::DOUBLE:
      return "a number";
    case dom::element_type::STRING:
      return "a string";
    case dom::element_type::BOOL:
      return "a boolean";
    case dom::element_type::NULL_VALUE:
      return "null";
  }
  return "an unknown type";
}

std::string format_number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

// An integer; a double holding an exact integer is one (Python: 3.0 == 3 as a dict key).
int64_t get_integer(const Entry& e, const char* key, dom::element v) {
  switch (v.type()) {
    case dom::element_type::INT64:
      return int64_t(v);
    case dom::element_type::DOUBLE: {
      const double d = double(v);
      if (d == std::floor(d) && std::fabs(d) < 9.0e15) return static_cast<int64_t>(d);
      if (d == std::floor(d)) {
        e.fail(std::string("'") + key + "' " + format_number(d) + " is too large for an id");
      }
      e.fail(std::string("'") + key + "' must be an integer, got " + format_number(d));
    }
    case dom::element_type::UINT64:
      e.fail(std::string("'") + key + "' " + std::to_string(uint64_t(v)) +
             " is too large for a 64-bit signed id");
    default:
      e.fail(std::string("'") + key + "' must be an integer, got " + type_name(v.type()));
  }
}

double get_number(const Entry& e, const char* key, dom::element v) {
  switch (v.type()) {
    case dom::element_type::INT64:
      return double(int64_t(v));
    case dom::element_type::UINT64:
      return double(uint64_t(v));
    case dom::element_type::DOUBLE:
      return double(v);  // simdjson refuses literals that overflow a double (1e999)
    default:
      e.fail(std::string("'") + key + "' must be a number, got " + type_name(v.type()));
  }
}

dom::object entry_object(const Entry& e, dom::element v) {
  if (v.type() != dom::element_type::OBJECT) {
    e.fail("must be an object, got " + std::string(type_name(v.type())));
  }
  return dom::object(v);
}

dom::array get_section(const std::string& file, dom::object root, const char* key) {
  // The last of a repeated key wins, as in Python's json.
  dom::element v;
  bool found = false;
  for (dom::key_value_pair field : root) {
    if (field.key == key) v = field.value, found = true;
  }
  if (!found) throw Error(file + ": missing top-level key '" + key + "'");
  if (v.type() != dom::element_type::ARRAY) {
    throw Error(file + ": '" + key + "' must be an array, got " + type_name(v.type()));
  }
  return dom::array(v);
}

// The last value of `key` in `object` (Python's json keeps the last of repeated keys).
bool find_last(dom::object object, std::string_view key, dom::element* out) {
  bool found = false;
  for (dom::key_value_pair field : object) {
    if (field.key == key) *out = field.value, found = true;
  }
  return found;
}

void read_images(const std::string& file, dom::array section, data::CocoDataset& ds) {
  ds.images.reserve(section.size());
  std::size_t index = 0;
  for (dom::element item : section) {
    const Entry e{&file, "images", index++};
    dom::element id;
    if (!find_last(entry_object(e, item), "id", &id)) e.fail("missing key 'id'");
    data::CocoImage image;
    image.id = get_integer(e, "id", id);
    // file_name, width and height are for opening the image; evaluation never does.
    ds.images.push_back(std::move(image));
  }
}

void read_categories(const std::string& file, dom::array section, data::CocoDataset& ds) {
  std::size_t index = 0;
  for (dom::element item : section) {
    Entry e{&file, "categories", index++};
    const dom::object object = entry_object(e, item);
    dom::element id, name;
    if (!find_last(object, "id", &id)) e.fail("missing key 'id'");
    data::CocoCategory category;
    category.id = get_integer(e, "id", id);
    // The name only labels the report's row (the id stands in for a missing one).
    if (find_last(object, "name", &name) && name.type() == dom::element_type::STRING) {
      category.name = std::string(std::string_view(name));
    }
    ds.categories.push_back(std::move(category));
  }
}

// pycocotools: gt['ignore'] = 'iscrowd' in gt and gt['iscrowd'] (truth), and int(iscrowd) for
// the crowd IoU. Integers and booleans agree on both; a fraction (0.5: ignored, yet matched as
// a regular box) or a string has no single meaning and is refused.
bool get_crowd(const Entry& e, dom::element v) {
  switch (v.type()) {
    case dom::element_type::BOOL:
      return bool(v);
    case dom::element_type::NULL_VALUE:
      return false;
    case dom::element_type::INT64:
      return int64_t(v) != 0;
    case dom::element_type::UINT64:
      return true;
    case dom::element_type::DOUBLE: {
      const double d = double(v);
      if (d == std::floor(d)) return d != 0;
      e.fail("'iscrowd' must be an integer or a boolean, got " + format_number(d));
    }
    default:
      e.fail(std::string("'iscrowd' must be an integer or a boolean, got ") + type_name(v.type()));
  }
}

void read_annotations(const std::string& file, dom::array section, data::CocoDataset& ds) {
  ds.annotations.reserve(section.size());
  std::unordered_map<int64_t, std::size_t> seen;
  seen.reserve(section.size());
  std::size_t index = 0;
  for (dom::element item : section) {
    Entry e{&file, "annotations", index++};
    dom::element id, image_id, category_id, bbox, area, iscrowd;
    bool has_id = false, has_image = false, has_category = false, has_bbox = false;
    bool has_area = false, has_crowd = false;
    for (dom::key_value_pair field : entry_object(e, item)) {
      const std::string_view k = field.key;
      if (k == "id") {
        id = field.value, has_id = true;
      } else if (k == "image_id") {
        image_id = field.value, has_image = true;
      } else if (k == "category_id") {
        category_id = field.value, has_category = true;
      } else if (k == "bbox") {
        bbox = field.value, has_bbox = true;
      } else if (k == "area") {
        area = field.value, has_area = true;
      } else if (k == "iscrowd") {
        iscrowd = field.value, has_crowd = true;
      }
    }
    if (!has_id) e.fail("missing key 'id'");
    data::CocoAnnotation a;
    a.id = get_integer(e, "id", id);
    e.has_id = true, e.id = a.id;
    if (const auto [it, fresh] = seen.emplace(a.id, index - 1); !fresh) {
      e.fail("duplicate annotation id " + std::to_string(a.id) + " (also annotations[" +
             std::to_string(it->second) + "]); pycocotools would evaluate one of the two twice");
    }
    if (!has_image) e.fail("missing key 'image_id'");
    if (!has_category) e.fail("missing key 'category_id'");
    if (!has_bbox) e.fail("missing key 'bbox'");
    a.image_id = get_integer(e, "image_id", image_id);
    a.category_id = get_integer(e, "category_id", category_id);
    if (bbox.type() != dom::element_type::ARRAY) {
      e.fail(std::string("'bbox' must be an array [x, y, width, height], got ") +
             type_name(bbox.type()));
    }
    const dom::array box(bbox);
    if (box.size() != 4) {
      e.fail("'bbox' must have 4 numbers [x, y, width, height], got " + std::to_string(box.size()));
    }
    double v[4];
    int k = 0;
    for (dom::element number : box) v[k++] = get_number(e, "bbox", number);
    a.x = v[0], a.y = v[1], a.w = v[2], a.h = v[3];
    // The area ranges use "area" as written; w * h stands in when it is absent.
    a.area = has_area ? get_number(e, "area", area) : a.w * a.h;
    a.iscrowd = has_crowd && get_crowd(e, iscrowd);
    ds.annotations.push_back(a);
  }
}

data::CocoDataset parse(const char* data, std::size_t size, bool padded, const std::string& name) {
  // A UTF-8 byte order mark (Windows editors write one) is not json; Python's json.load with
  // encoding utf-8-sig would skip it, and so do we.
  if (size >= 3 && std::memcmp(data, "\xEF\xBB\xBF", 3) == 0) data += 3, size -= 3;
  dom::parser parser;
  dom::element root;
  if (auto error = parser.parse(data, size, /*realloc_if_needed=*/!padded).get(root)) {
    std::string where = data::diagnose_json(std::string_view(data, size));
    if (where.empty()) where = simdjson::error_message(error);
    throw Error(name + ": malformed JSON: " + where);
  }
  if (root.type() != dom::element_type::OBJECT) {
    throw Error(name + ": the top level must be an object with 'images', 'annotations' and " +
                "'categories', got " + type_name(root.type()));
  }
  const dom::object top(root);
  data::CocoDataset ds;
  ds.path = name;
  read_images(name, get_section(name, top, "images"), ds);
  read_categories(name, get_section(name, top, "categories"), ds);
  read_annotations(name, get_section(name, top, "annotations"), ds);
  return ds;
}

}  // namespace

data::CocoDataset parse_ground_truth(std::string_view json_text, const std::string& name) {
  return parse(json_text.data(), json_text.size(), /*padded=*/false, name);
}

data::CocoDataset read_ground_truth(const std::string& json_path) {
  std::error_code ec;
  if (std::filesystem::is_directory(json_path, ec)) {
    throw Error(json_path + ": is a directory, not a json file");
  }
  simdjson::padded_string text;
  errno = 0;
  if (auto error = simdjson::padded_string::load(json_path).get(text)) {
    throw Error(json_path + ": cannot read: " +
                (errno != 0 ? std::string(std::strerror(errno)) : simdjson::error_message(error)));
  }
  return parse(text.data(), text.size(), /*padded=*/true, json_path);
}

}  // namespace focaldet::eval
