#include "eval/eval_report.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/atomic_file.h"

namespace focaldet::eval {

namespace {

// Widest the name column gets: a long name is cut, not the whole table padded to it.
constexpr std::size_t kMaxNameColumns = 40;

std::size_t utf8_length(const std::string& s) {
  std::size_t n = 0;
  for (const char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

// The name as it can be printed on one line of a terminal: control characters (C0, DEL, and
// C1 as UTF-8 U+0080..U+009F, which some terminals obey as escapes) and the backslash are
// written escaped (\n, \x1b, \u009b, \\), so a name can neither forge a report line nor
// move the cursor. Cut to kMaxNameColumns code points with "..." at the end.
std::string printable_name(const std::string& name) {
  std::string out;
  char buf[8];
  for (std::size_t i = 0; i < name.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(name[i]);
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7F) {
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else if (c == 0xC2 && i + 1 < name.size() &&
               static_cast<unsigned char>(name[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(name[i + 1]) <= 0x9F) {
      std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned char>(name[++i]));
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (utf8_length(out) <= kMaxNameColumns) return out;
  // Keep kMaxNameColumns - 3 code points, then "...".
  std::size_t kept = 0, end = 0;
  while (end < out.size()) {
    if ((static_cast<unsigned char>(out[end]) & 0xC0) != 0x80) {
      if (kept == kMaxNameColumns - 3) break;
      ++kept;
    }
    ++end;
  }
  return out.substr(0, end) + "...";
}

}  // namespace

std::string format_report(const CocoEvalResult& result) {
  std::string out;
  for (const auto& line : summary_lines(result)) out += line + "\n";
  std::vector<std::string> names(result.category_ids.size());
  std::size_t width = 8;
  for (std::size_t k = 0; k < names.size(); ++k) {
    names[k] = result.category_names[k].empty() ? std::to_string(result.category_ids[k])
                                                : printable_name(result.category_names[k]);
    width = std::max(width, utf8_length(names[k]));
  }
  char buf[64];
  out += "\n" + std::string("category") + std::string(width - 8, ' ') + "      AP    AP50\n";
  for (std::size_t k = 0; k < names.size(); ++k) {
    out += names[k] + std::string(width - std::min(width, utf8_length(names[k])), ' ');
    if (result.ap[k] < 0) {
      out += "       -       -  (no ground truth)\n";
      continue;
    }
    std::snprintf(buf, sizeof(buf), "  %6.3f  %6.3f\n", result.ap[k], result.ap50[k]);
    out += buf;
  }
  return out;
}

std::string metrics_json(const CocoEvalResult& result, int indent) {
  nlohmann::ordered_json j;
  for (std::size_t n = 0; n < result.stats.size(); ++n) j[kStatNames[n]] = result.stats[n];
  nlohmann::ordered_json ap = nlohmann::ordered_json::object();
  nlohmann::ordered_json ap50 = nlohmann::ordered_json::object();
  for (std::size_t k = 0; k < result.category_ids.size(); ++k) {
    ap[std::to_string(result.category_ids[k])] = result.ap[k];
    ap50[std::to_string(result.category_ids[k])] = result.ap50[k];
  }
  j["AP_per_category"] = std::move(ap);
  j["AP50_per_category"] = std::move(ap50);
  return j.dump(indent);
}

void write_metrics_json(const std::string& path, const CocoEvalResult& result) {
  write_file_atomic(path, metrics_json(result) + "\n");
}

}  // namespace focaldet::eval
