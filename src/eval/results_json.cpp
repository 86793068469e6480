#include "eval/results_json.h"

#include <simdjson.h>

#include <charconv>
#include <cmath>
#include <string>

#include "common/error.h"
#include "eval/atomic_file.h"

namespace focaldet::eval {
namespace {

namespace od = simdjson::ondemand;

// Where the parser stands, as a byte offset, for messages about malformed json.
std::string location(od::document& doc, const simdjson::padded_string& text) {
  const char* at = nullptr;
  if (doc.current_location().get(at) != simdjson::SUCCESS || at == nullptr) return "";
  return " at byte " + std::to_string(at - text.data());
}

class EntryReader {
 public:
  EntryReader(const std::string& origin, std::size_t index) : origin_(origin), index_(index) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(origin_ + ": detection " + std::to_string(index_) + ": " + what);
  }

  int64_t read_id(od::value value, const char* key) const {
    od::number number;
    if (value.get_number().get(number) != simdjson::SUCCESS) {
      fail(std::string("\"") + key + "\" is not a number");
    }
    switch (number.get_number_type()) {
      case od::number_type::signed_integer:
        return number.get_int64();
      case od::number_type::unsigned_integer:
        fail(std::string("\"") + key + "\" is out of range");
      default: {
        // 7.0 reads as the id 7, as it does in Python (7.0 == 7 as a dict key).
        const double v = number.get_double();
        if (!std::isfinite(v) || v != std::floor(v) || std::fabs(v) > 9.0e15) {
          fail(std::string("\"") + key + "\" is not an integer");
        }
        return static_cast<int64_t>(v);
      }
    }
  }

  double read_number(od::value value, const char* what) const {
    double v = 0;
    if (value.get_double().get(v) != simdjson::SUCCESS || !std::isfinite(v)) {
      fail(std::string(what) + " is not a finite number");
    }
    return v;
  }

 private:
  const std::string& origin_;
  std::size_t index_;
};

std::vector<Detection> parse_padded(const simdjson::padded_string& text,
                                    const std::string& origin) {
  od::parser parser;
  od::document doc;
  if (auto error = parser.iterate(text).get(doc)) {
    throw Error(origin + ": not valid json: " + simdjson::error_message(error));
  }
  od::array list;
  if (auto error = doc.get_array().get(list)) {
    if (error == simdjson::INCORRECT_TYPE) {
      throw Error(origin + ": a results file is a json list of detections; this is not a list");
    }
    throw Error(origin + ": not valid json" + location(doc, text) + ": " +
                simdjson::error_message(error));
  }
  std::vector<Detection> out;
  out.reserve(text.size() / 96);  // ~100 bytes per entry in typical files
  std::size_t index = 0;
  for (auto element : list) {
    const EntryReader entry(origin, index);
    od::object object;
    if (auto error = element.get_object().get(object)) {
      if (error == simdjson::INCORRECT_TYPE) entry.fail("not a json object");
      entry.fail(std::string("not valid json") + location(doc, text) + ": " +
                 simdjson::error_message(error));
    }
    Detection d;
    bool has_image = false, has_category = false, has_bbox = false, has_score = false;
    for (auto field : object) {
      std::string_view key;
      if (auto error = field.unescaped_key().get(key)) {
        entry.fail(std::string("not valid json") + location(doc, text) + ": " +
                   simdjson::error_message(error));
      }
      od::value value;
      if (auto error = field.value().get(value)) {
        entry.fail(std::string("not valid json") + location(doc, text) + ": " +
                   simdjson::error_message(error));
      }
      if (key == "image_id") {
        d.image_id = entry.read_id(value, "image_id");
        has_image = true;
      } else if (key == "category_id") {
        d.category_id = entry.read_id(value, "category_id");
        has_category = true;
      } else if (key == "score") {
        d.score = entry.read_number(value, "\"score\"");
        has_score = true;
      } else if (key == "bbox") {
        od::array box;
        if (value.get_array().get(box) != simdjson::SUCCESS) {
          entry.fail("\"bbox\" is not a list [x, y, width, height]");
        }
        double xywh[4] = {0, 0, 0, 0};
        std::size_t n = 0;
        for (auto number : box) {
          od::value v;
          if (number.get(v) != simdjson::SUCCESS) entry.fail("\"bbox\" is not valid json");
          if (n < 4) xywh[n] = entry.read_number(v, "a \"bbox\" value");
          ++n;
        }
        if (n != 4) {
          entry.fail("\"bbox\" has " + std::to_string(n) + " numbers, not 4 [x, y, width, height]");
        }
        d.x = xywh[0];
        d.y = xywh[1];
        d.w = xywh[2];
        d.h = xywh[3];
        has_bbox = true;
      }
      // Other keys (id, area, segmentation, ...) are recomputed by loadRes for boxes: skipped.
    }
    if (!has_image) entry.fail("missing \"image_id\"");
    if (!has_category) entry.fail("missing \"category_id\"");
    if (!has_bbox) entry.fail("missing \"bbox\"");
    if (!has_score) entry.fail("missing \"score\"");
    out.push_back(d);
    ++index;
  }
  // current_location() answers OUT_OF_BOUNDS exactly when the whole text has been consumed.
  const char* rest = nullptr;
  if (doc.current_location().get(rest) == simdjson::SUCCESS) {
    throw Error(origin + ": not valid json at byte " + std::to_string(rest - text.data()) +
                ": content after the list of detections");
  }
  return out;
}

void append_double(std::string& out, double v) {
  char buf[32];
  const auto result = std::to_chars(buf, buf + sizeof(buf), v);  // shortest round-trip form
  out.append(buf, result.ptr);
}

}  // namespace

std::vector<Detection> read_results(const std::string& json_path) {
  simdjson::padded_string text;
  if (auto error = simdjson::padded_string::load(json_path).get(text)) {
    throw Error("cannot read results " + json_path + ": " + simdjson::error_message(error));
  }
  return parse_padded(text, json_path);
}

std::vector<Detection> parse_results(std::string_view json, const std::string& origin) {
  const simdjson::padded_string text(json);
  return parse_padded(text, origin);
}

void write_results(const std::string& json_path, const std::vector<Detection>& detections) {
  std::string out;
  out.reserve(detections.size() * 110 + 2);
  out += '[';
  for (std::size_t n = 0; n < detections.size(); ++n) {
    const Detection& d = detections[n];
    if (!(std::isfinite(d.x) && std::isfinite(d.y) && std::isfinite(d.w) && std::isfinite(d.h) &&
          std::isfinite(d.score))) {
      throw Error("writing " + json_path + ": detection " + std::to_string(n) +
                  " has a non-finite number");
    }
    if (n) out += ",\n";
    out += "{\"image_id\": " + std::to_string(d.image_id) +
           ", \"category_id\": " + std::to_string(d.category_id) + ", \"bbox\": [";
    append_double(out, d.x);
    out += ", ";
    append_double(out, d.y);
    out += ", ";
    append_double(out, d.w);
    out += ", ";
    append_double(out, d.h);
    out += "], \"score\": ";
    append_double(out, d.score);
    out += '}';
  }
  out += "]\n";
  write_file_atomic(json_path, out);
}

}  // namespace focaldet::eval
