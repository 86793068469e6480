#pragma once
// Internal to config/: reading one YAML value into a typed field, with the error naming where
// it came from ("configs/x.yaml:12: loss.gamma: expected a number, got 'abc'").
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"

namespace focaldet::config::detail {

// Where the keys being read come from: one file ("configs/x.yaml:12") or one --set.
struct Source {
  std::string name;    // the file as messages show it, or "--set key=value"
  std::string folder;  // relative paths resolve against it ("" = the current folder)
  bool is_override = false;

  std::string at(const YAML::Mark& mark) const {
    if (is_override || mark.is_null()) return name;
    return name + ":" + std::to_string(mark.line + 1);  // yaml-cpp counts lines from 0
  }
};

// One value being read, for its error messages: "x.yaml:12: loss.gamma: expected ...".
struct Slot {
  const Source& source;
  std::string key;
  YAML::Mark mark;
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(source.at(mark) + ": " + key + ": " + what);
  }
};

// "'abc'" for a scalar, else "a map", "a list" or "nothing".
std::string describe(const YAML::Node& node);

// A scalar's text; a map, a list or nothing where one value belongs is an error.
const std::string& scalar_text(const Slot& slot, const YAML::Node& node, const char* expected);

// Each reads `node` or fails with the slot's file:line and key.
double read_double(const Slot& slot, const YAML::Node& node);  // finite only
int read_int(const Slot& slot, const YAML::Node& node);
int64_t read_int64(const Slot& slot, const YAML::Node& node);
uint64_t read_uint64(const Slot& slot, const YAML::Node& node);
bool read_bool(const Slot& slot, const YAML::Node& node);           // true or false only
std::string read_string(const Slot& slot, const YAML::Node& node);  // null reads as ""
std::vector<int> read_int_list(const Slot& slot, const YAML::Node& node);
std::vector<double> read_double_list(const Slot& slot, const YAML::Node& node);

// `value` joined to `folder` when relative, normalised lexically ("configs/../data/bccd" ->
// "data/bccd"); "" stays "".
std::string resolve_path(const std::string& folder, const std::string& value);

}  // namespace focaldet::config::detail
