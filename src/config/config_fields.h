#pragma once
// Internal to config/: the table of every key of Config ("loss.gamma" -> &config.loss.gamma),
// shared by the reader (config_io.cpp), the writer (to_yaml) and the validator, so that a key
// added to config.h is added here once and is then read, written and suggested everywhere.
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "config/config.h"

namespace focaldet::config::detail {

using FieldRef = std::variant<int*, int64_t*, uint64_t*, double*, bool*, std::string*,
                              std::vector<int>*, std::vector<double>*>;

struct Field {
  const char* key;       // full dotted key, "model.anchors.base_sizes"
  FieldRef ref;          // points into the Config passed to fields()
  bool is_path = false;  // resolved against the folder of the file that set it
};

// Every key of `config`, sections contiguous and in config.h's order (to_yaml writes them so).
std::vector<Field> fields(Config& config);

// The names directly under `section` ("" for the top level): keys and sub-sections, in order.
std::vector<std::string> children(const std::string& section);
bool is_section(const std::string& key);

// Levenshtein distance, for "did you mean".
std::size_t edit_distance(const std::string& a, const std::string& b);

// The shortest decimal that reads back to the same double ("0.1", "0.11111111111111111").
std::string format_double(double v);

}  // namespace focaldet::config::detail
