#include "config/config_values.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <limits>
#include <type_traits>

namespace focaldet::config::detail {

namespace fs = std::filesystem;

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return "'" + node.Scalar() + "'";
    default:
      return "nothing";
  }
}

// A scalar's text; a map, a list or nothing where one value belongs is an error.
const std::string& scalar_text(const Slot& slot, const YAML::Node& node, const char* expected) {
  if (!node.IsScalar()) slot.fail(std::string("expected ") + expected + ", got " + describe(node));
  return node.Scalar();
}

namespace {

enum class Parsed { kOk, kNotANumber, kNotFinite };

Parsed parse_double(const std::string& text, double* out) {
  const char* begin = text.data();
  const char* end = begin + text.size();
  if (begin != end && *begin == '+') ++begin;  // from_chars takes '-' only
  const auto [ptr, ec] = std::from_chars(begin, end, *out);
  if (ec == std::errc::result_out_of_range) return Parsed::kNotFinite;  // 1e999
  if (ec == std::errc() && ptr == end)
    return std::isfinite(*out) ? Parsed::kOk : Parsed::kNotFinite;
  // YAML spells infinity and NaN .inf, -.inf and .nan (any case).
  std::string lower;
  for (char ch : text) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (lower == ".inf" || lower == "+.inf" || lower == "-.inf" || lower == ".nan") {
    return Parsed::kNotFinite;
  }
  return Parsed::kNotANumber;
}

}  // namespace

double read_double(const Slot& slot, const YAML::Node& node) {
  const std::string& text = scalar_text(slot, node, "a number");
  double value = 0;
  switch (parse_double(text, &value)) {
    case Parsed::kOk:
      return value;
    case Parsed::kNotFinite:
      slot.fail("expected a finite number, got '" + text + "'");
    default:
      slot.fail("expected a number, got '" + text + "'");
  }
}

namespace {

// An integer of type T. A number written with a fraction or exponent is accepted when it holds
// an exact integer (1e3, 2.0); 1.5 is not.
template <class T>
T read_integer(const Slot& slot, const YAML::Node& node) {
  const std::string& text = scalar_text(slot, node, "an integer");
  const std::string range = "[" + std::to_string(std::numeric_limits<T>::min()) + ", " +
                            std::to_string(std::numeric_limits<T>::max()) + "]";
  const char* begin = text.data();
  const char* end = begin + text.size();
  if (begin != end && *begin == '+') ++begin;
  if constexpr (std::is_unsigned_v<T>) {
    if (begin != end && *begin == '-') {
      slot.fail("expected a non-negative integer, got '" + text + "'");
    }
  }
  T value{};
  const auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ec == std::errc() && ptr == end) return value;
  if (ec == std::errc::result_out_of_range && ptr == end) {
    slot.fail("expected an integer in " + range + ", got '" + text + "'");
  }
  double as_double = 0;
  const Parsed parsed = parse_double(text, &as_double);
  if (parsed == Parsed::kOk && as_double == std::floor(as_double)) {
    // Compared in double: the range ends are exact powers of two (or one off them), close enough
    // for a config value.
    if (as_double >= static_cast<double>(std::numeric_limits<T>::min()) &&
        as_double < static_cast<double>(std::numeric_limits<T>::max())) {
      return static_cast<T>(as_double);
    }
    slot.fail("expected an integer in " + range + ", got '" + text + "'");
  }
  slot.fail("expected an integer, got '" + text + "'");
}

}  // namespace

int read_int(const Slot& slot, const YAML::Node& node) { return read_integer<int>(slot, node); }
int64_t read_int64(const Slot& slot, const YAML::Node& node) {
  return read_integer<int64_t>(slot, node);
}
uint64_t read_uint64(const Slot& slot, const YAML::Node& node) {
  return read_integer<uint64_t>(slot, node);
}

bool read_bool(const Slot& slot, const YAML::Node& node) {
  // Only true/false: YAML 1.1's yes/no/on/off are ambiguous (train.progress takes "on").
  const std::string& text = scalar_text(slot, node, "true or false");
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  slot.fail("expected true or false, got '" + text + "'");
}

// Relative paths are joined to the folder of the file that named them and normalised
// lexically ("configs/../data/bccd" -> "data/bccd"): relative stays relative, absolute stays
// absolute, and nothing is looked up on disk here (validate() does that).
std::string resolve_path(const std::string& folder, const std::string& value) {
  if (value.empty()) return value;
  fs::path path(value);
  if (path.is_relative() && !folder.empty()) path = fs::path(folder) / path;
  std::string normal = path.lexically_normal().string();
  while (normal.size() > 1 && normal.back() == '/') normal.pop_back();
  return normal;
}

std::string read_string(const Slot& slot, const YAML::Node& node) {
  if (node.IsNull()) return "";  // `val:` or `--set data.val=` unsets a string
  return scalar_text(slot, node, "a string");
}

namespace {

template <class T, class ReadOne>
std::vector<T> read_list(const Slot& slot, const YAML::Node& node, ReadOne read_one) {
  if (!node.IsSequence()) slot.fail("expected a list, got " + describe(node));
  std::vector<T> values;
  for (std::size_t i = 0; i < node.size(); ++i) {
    const Slot item{slot.source, slot.key + "[" + std::to_string(i) + "]", node[i].Mark()};
    values.push_back(read_one(item, node[i]));
  }
  return values;
}

}  // namespace

std::vector<int> read_int_list(const Slot& slot, const YAML::Node& node) {
  return read_list<int>(slot, node, read_int);
}
std::vector<double> read_double_list(const Slot& slot, const YAML::Node& node) {
  return read_list<double>(slot, node, read_double);
}

}  // namespace focaldet::config::detail
