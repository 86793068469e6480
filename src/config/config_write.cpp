// to_yaml: the run directory's config.yaml, every key with the value that ran. Doubles are
// written with as many digits as they need to read back bit-identical.
#include <cctype>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "config/config_fields.h"
#include "config/config_io.h"

namespace focaldet::config {
namespace {

// Plain when it cannot be read as anything but this string by any YAML reader (no number,
// bool or null look-alike, no indicator characters); else double-quoted with escapes.
std::string yaml_string(const std::string& s) {
  bool plain =
      !s.empty() && (std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_' || s[0] == '/');
  for (char ch : s) {
    plain = plain && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '.' ||
                      ch == '/' || ch == '-');
  }
  std::string lower;
  for (char ch : s) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  for (const char* word : {"true", "false", "yes", "no", "on", "off", "y", "n", "null"}) {
    plain = plain && lower != word;
  }
  if (plain) return s;
  std::string quoted = "\"";
  for (char ch : s) {
    const auto byte = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') {
      quoted += '\\';
      quoted += ch;
    } else if (byte < 0x20 || byte == 0x7f) {
      char escape[8];
      std::snprintf(escape, sizeof(escape), "\\x%02x", byte);
      quoted += escape;
    } else {
      quoted += ch;  // UTF-8 passes through
    }
  }
  return quoted + "\"";
}

template <class T, class Format>
std::string yaml_list(const std::vector<T>& values, Format format) {
  std::string out = "[";
  for (std::size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + format(values[i]);
  return out + "]";
}

struct ValueText {
  std::string operator()(const int* p) const { return std::to_string(*p); }
  std::string operator()(const int64_t* p) const { return std::to_string(*p); }
  std::string operator()(const uint64_t* p) const { return std::to_string(*p); }
  std::string operator()(const double* p) const { return detail::format_double(*p); }
  std::string operator()(const bool* p) const { return *p ? "true" : "false"; }
  std::string operator()(const std::string* p) const { return yaml_string(*p); }
  std::string operator()(const std::vector<int>* p) const {
    return yaml_list(*p, [](int v) { return std::to_string(v); });
  }
  std::string operator()(const std::vector<double>* p) const {
    return yaml_list(*p, detail::format_double);
  }
};

}  // namespace

std::string to_yaml(const Config& config) {
  Config copy = config;  // fields() hands out mutable pointers; this only reads them
  std::string out =
      "# focaldet config: every key, as it ran. Paths are as resolved, relative to the folder\n"
      "# focaldet ran in (or absolute).\n";
  std::vector<std::string> open;  // the sections the previous key was in, outermost first
  for (const detail::Field& field : detail::fields(copy)) {
    std::vector<std::string> parts;
    std::stringstream split(field.key);
    for (std::string part; std::getline(split, part, '.');) parts.push_back(part);
    const std::vector<std::string> sections(parts.begin(), parts.end() - 1);
    std::size_t common = 0;
    while (common < open.size() && common < sections.size() && open[common] == sections[common]) {
      ++common;
    }
    open.resize(common);
    for (std::size_t depth = common; depth < sections.size(); ++depth) {
      if (depth == 0) out += "\n";
      out += std::string(2 * depth, ' ') + sections[depth] + ":\n";
      open.push_back(sections[depth]);
    }
    out += std::string(2 * sections.size(), ' ') + parts.back() + ": " +
           std::visit(ValueText{}, field.ref) + "\n";
  }
  return out;
}

}  // namespace focaldet::config
