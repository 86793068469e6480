#include "data/json_diagnostics.h"

#include <cmath>
#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace focaldet::data {
namespace {

// Follows the SAX events to know the path of the current value ("images[3].file_name") and
// stops at the first parse error or non-finite number.
class PathTracker : public nlohmann::json_sax<nlohmann::json> {
 public:
  bool null() override { return scalar(); }
  bool boolean(bool) override { return scalar(); }
  bool number_integer(number_integer_t) override { return scalar(); }
  bool number_unsigned(number_unsigned_t) override { return scalar(); }
  bool number_float(number_float_t v, const string_t& text) override {
    value();
    // nlohmann reports overflowing literals (1e999) as parse errors; keep a guard for inf
    // in case a version lets one through: a COCO file never means it.
    if (!std::isfinite(v)) {
      problem_ = "number '" + text + "' is not finite, in " + path();
      return false;
    }
    // An integer literal reaches here only when it does not fit in 64 bits (nlohmann reads it
    // as a double); simdjson refuses it ("Problem while parsing a number"), so name the place.
    if (text.find_first_of(".eE") == string_t::npos) {
      problem_ = "integer '" + text.substr(0, 40) + (text.size() > 40 ? "..." : "") +
                 "' does not fit in 64 bits, in " + path();
      return false;
    }
    return scalar_done();
  }
  bool string(string_t&) override { return scalar(); }
  bool binary(binary_t&) override { return scalar(); }
  bool start_object(std::size_t) override {
    value();
    frames_.push_back({/*is_array=*/false, -1, {}});
    return true;
  }
  bool key(string_t& k) override {
    frames_.back().key = k;
    return true;
  }
  bool end_object() override {
    frames_.pop_back();
    return scalar_done();
  }
  bool start_array(std::size_t) override {
    value();
    frames_.push_back({/*is_array=*/true, -1, {}});
    return true;
  }
  bool end_array() override {
    frames_.pop_back();
    return scalar_done();
  }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& ex) override {
    error_position_ = position;
    // The error is in the array element after the last complete one (a bad literal, a
    // missing value after ',').
    if (!frames_.empty() && frames_.back().is_array) ++frames_.back().index;
    // what(): "[json.exception.parse_error.101] parse error at line 1, column 5: <reason>".
    std::string what = ex.what();
    const std::size_t column = what.find("column ");
    const std::size_t colon =
        column == std::string::npos ? what.find("] ") : what.find(": ", column);
    reason_ = colon == std::string::npos ? what : what.substr(colon + 2);
    has_error_ = true;
    return false;
  }

  bool has_error() const { return has_error_; }
  std::size_t error_position() const { return error_position_; }
  const std::string& reason() const { return reason_; }
  const std::string& problem() const { return problem_; }

  // "annotations[3].bbox[2]", or "the top level". A path deeper than kShownLevels shows its
  // first and last levels around "...(N levels)...", and a key longer than kShownKey is cut:
  // an unclosed 100k-deep array once printed a 300 KB path.
  std::string path() const {
    constexpr std::size_t kShownLevels = 12, kShownKey = 64;
    std::vector<std::string> parts;
    for (const Frame& f : frames_) {
      if (f.is_array) {
        if (f.index >= 0) parts.push_back("[" + std::to_string(f.index) + "]");
      } else if (!f.key.empty()) {
        parts.push_back("." + (f.key.size() > kShownKey ? f.key.substr(0, kShownKey) + "..." : f.key));
      }
    }
    std::string p;
    for (std::size_t i = 0; i < parts.size(); ++i) {
      if (parts.size() > kShownLevels && i == kShownLevels / 2) {
        const std::size_t skipped = parts.size() - kShownLevels;
        p += "...(" + std::to_string(skipped) + " levels)...";
        i += skipped - 1;
        continue;
      }
      p += parts[i];
    }
    if (!p.empty() && p[0] == '.') p.erase(0, 1);
    return p.empty() ? "the top level" : p;
  }

 private:
  struct Frame {
    bool is_array;
    long index;       // current element of an array
    std::string key;  // current key of an object
  };
  bool value() {
    if (!frames_.empty() && frames_.back().is_array) ++frames_.back().index;
    return true;
  }
  bool scalar() {
    value();
    return scalar_done();
  }
  // A value of an object is complete: the path no longer names its key.
  bool scalar_done() {
    if (!frames_.empty() && !frames_.back().is_array) frames_.back().key.clear();
    return true;
  }

  std::vector<Frame> frames_;
  bool has_error_ = false;
  std::size_t error_position_ = 0;
  std::string reason_;
  std::string problem_;
};

}  // namespace

std::string diagnose_json(std::string_view text) {
  PathTracker tracker;
  nlohmann::json::sax_parse(text.begin(), text.end(), &tracker,
                            nlohmann::detail::input_format_t::json, /*strict=*/true);
  if (!tracker.problem().empty()) return tracker.problem();
  if (!tracker.has_error()) return {};
  // nlohmann's position counts the characters read: the offending one included, or all of
  // them when the input ended too early.
  const bool at_end = tracker.reason().find("unexpected end of input") != std::string::npos;
  const std::size_t byte = std::min(
      at_end ? text.size() : (tracker.error_position() == 0 ? 0 : tracker.error_position() - 1),
      text.size());
  std::size_t line = 1, column = 1;
  for (std::size_t i = 0; i < byte; ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return std::string(at_end ? "at the end of the input, " : "") + "line " + std::to_string(line) +
         ", column " + std::to_string(column) + " (byte " + std::to_string(byte) + "), in " +
         tracker.path() + ": " + tracker.reason();
}

}  // namespace focaldet::data
