// Reading configs: YAML files (with `base:` inheritance) and --set overrides, applied key by
// key onto a default Config, so a key a file does not name keeps its default and a later
// source (the child file, then each --set) simply overwrites the fields it names. Lists are
// therefore replaced, never merged. Every error names where the key came from (file:line).
#include "config/config_io.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "config/config_fields.h"
#include "config/config_values.h"

namespace focaldet::config {
namespace {

namespace fs = std::filesystem;
using detail::describe;
using detail::Field;
using detail::resolve_path;
using detail::scalar_text;
using detail::Slot;
using detail::Source;

std::string join(const std::vector<std::string>& names, const char* separator) {
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : separator) + name;
  return out;
}

// "unknown key 'gama' in 'loss' (did you mean 'gamma'?)", or the valid keys when none is close.
[[noreturn]] void fail_unknown(const Source& source, const YAML::Mark& mark,
                               const std::string& section, const std::string& name) {
  std::vector<std::string> valid = detail::children(section);
  if (section.empty() && !source.is_override) valid.push_back("base");
  std::string best;
  std::size_t best_distance = std::numeric_limits<std::size_t>::max();
  for (const std::string& candidate : valid) {
    const std::size_t d = detail::edit_distance(name, candidate);
    if (d < best_distance) best = candidate, best_distance = d;
  }
  std::string message =
      source.at(mark) + ": unknown " +
      (section.empty() ? "section '" + name + "'" : "key '" + name + "' in '" + section + "'");
  if (best_distance <= std::max<std::size_t>(2, name.size() / 3)) {
    message += " (did you mean '" + best + "'?)";
  } else {
    message += " (valid: " + join(valid, ", ") + ")";
  }
  throw Error(message);
}

YAML::Node parse_yaml(const std::string& text, const std::string& name) {
  try {
    return YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw Error(name + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: " + e.msg +
                " (column " + std::to_string(e.mark.column + 1) + ")");
  }
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Identity of a config file for cycle detection: the same file reached by two spellings
// (configs/a.yaml, configs/../configs/a.yaml) is one file.
std::string file_identity(const fs::path& path) {
  std::error_code ec;
  const fs::path canonical = fs::weakly_canonical(fs::absolute(path), ec);
  return ec ? path.lexically_normal().string() : canonical.string();
}

class Reader {
 public:
  explicit Reader(Config& config) : config_(config) {
    for (const Field& f : detail::fields(config)) fields_.emplace(f.key, f);
  }

  // `chain`: identities and names of the files that include this one, itself last.
  void read_file(const std::string& text, const Source& source,
                 const std::vector<std::pair<std::string, std::string>>& chain) {
    const YAML::Node root = parse_yaml(text, source.name);
    if (root.IsNull()) return;  // an empty file: all defaults
    if (!root.IsMap()) {
      throw Error(source.at(root.Mark()) + ": expected a map of sections (" +
                  join(detail::children(""), ", ") + "), got " + describe(root));
    }
    for (auto it = root.begin(); it != root.end(); ++it) {
      if (it->first.IsScalar() && it->first.Scalar() == "base") {
        read_base(it->first, it->second, source, chain);
      }
    }
    apply_map("", root, source);
  }

  void read_override(const std::string& text) {
    const Source source{"--set " + text, /*folder=*/"", /*is_override=*/true};
    const std::size_t eq = text.find('=');
    if (eq == std::string::npos) {
      throw Error(source.name + ": expected key.path=value (e.g. --set loss.gamma=3)");
    }
    const std::string key = text.substr(0, eq);
    std::vector<std::string> parts;
    std::stringstream split(key);
    for (std::string part; std::getline(split, part, '.');) parts.push_back(part);
    bool well_formed = !key.empty() && key.back() != '.';
    for (const std::string& part : parts) well_formed = well_formed && !part.empty();
    if (!well_formed) throw Error(source.name + ": '" + key + "' is not a key path (section.key)");
    if (parts[0] == "base") throw Error(source.name + ": base can only be set in a config file");
    YAML::Node value;
    try {
      value = YAML::Load(text.substr(eq + 1));
    } catch (const YAML::ParserException& e) {
      throw Error(source.name + ": the value is not valid YAML: " + e.msg);
    }
    // --set a.b.c=v reads as the file `a: {b: {c: v}}` would, with the same checks.
    YAML::Node node = value;
    for (auto part = parts.rbegin(); part != parts.rend(); ++part) {
      YAML::Node map(YAML::NodeType::Map);
      map[*part] = node;
      node = map;
    }
    apply_map("", node, source);
  }

 private:
  void read_base(const YAML::Node& key, const YAML::Node& value, const Source& source,
                 std::vector<std::pair<std::string, std::string>> chain) {
    const Slot slot{source, "base", key.Mark()};
    const std::string& base = scalar_text(slot, value, "a file name");
    if (base.empty()) slot.fail("expected a file name, got ''");
    const fs::path path = resolve_path(source.folder, base);
    const std::string identity = file_identity(path);
    std::vector<std::string> names;
    names.reserve(chain.size() + 1);
    for (const auto& [id, name] : chain) names.push_back(name);
    names.push_back(path.string());
    for (const auto& link : chain) {
      if (link.first == identity) slot.fail("cycle: " + join(names, " -> "));
    }
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) slot.fail("no such file '" + path.string() + "'");
    chain.emplace_back(identity, path.string());
    read_file(read_text(path), Source{path.string(), path.parent_path().string()}, chain);
  }

  void apply_map(const std::string& section, const YAML::Node& map, const Source& source) {
    std::map<std::string, int> seen;  // name -> line, for duplicate keys
    for (auto it = map.begin(); it != map.end(); ++it) {
      // Copies (a Node is a handle): yaml-cpp's it->first is a member of a temporary proxy that
      // dies with the statement, so a reference to it dangles (ASan: stack-use-after-scope).
      const YAML::Node key = it->first;
      const YAML::Node value = it->second;
      if (!key.IsScalar()) {
        throw Error(source.at(key.Mark()) + ": expected a key name, got " + describe(key));
      }
      const std::string& name = key.Scalar();
      if (section.empty() && name == "base" && !source.is_override) continue;  // read first
      const std::string full = section.empty() ? name : section + "." + name;
      const auto [first, inserted] = seen.emplace(name, key.Mark().line + 1);
      if (!inserted) {
        throw Error(source.at(key.Mark()) + ": duplicate key '" + full + "' (first at line " +
                    std::to_string(first->second) + ")");
      }
      if (const auto field = fields_.find(full); field != fields_.end()) {
        set_field(field->second, Slot{source, full, key.Mark()}, value);
      } else if (detail::is_section(full)) {
        if (value.IsNull()) continue;  // `loss:` with nothing under it
        if (!value.IsMap()) {
          Slot{source, full, key.Mark()}.fail("expected a map of keys, got " + describe(value));
        }
        apply_map(full, value, source);
      } else {
        fail_unknown(source, key.Mark(), section, name);
      }
    }
  }

  void set_field(const Field& field, const Slot& slot, const YAML::Node& value) {
    struct Visitor {
      const Field& field;
      const Slot& slot;
      const YAML::Node& value;
      void operator()(int* p) const { *p = detail::read_int(slot, value); }
      void operator()(int64_t* p) const { *p = detail::read_int64(slot, value); }
      void operator()(uint64_t* p) const { *p = detail::read_uint64(slot, value); }
      void operator()(double* p) const { *p = detail::read_double(slot, value); }
      void operator()(bool* p) const { *p = detail::read_bool(slot, value); }
      void operator()(std::string* p) const {
        *p = detail::read_string(slot, value);
        if (field.is_path) *p = resolve_path(slot.source.folder, *p);
      }
      void operator()(std::vector<int>* p) const { *p = detail::read_int_list(slot, value); }
      void operator()(std::vector<double>* p) const { *p = detail::read_double_list(slot, value); }
    };
    std::visit(Visitor{field, slot, value}, field.ref);
    config_.origins[slot.key] = slot.source.at(slot.mark);
  }

  Config& config_;
  std::map<std::string, Field> fields_;
};

Config read(const std::string& text, const std::string& name, const std::string& folder,
            const std::vector<std::string>& overrides) {
  Config config;
  config.path = name;
  Reader reader(config);
  const fs::path self = fs::path(folder) / fs::path(name).filename();
  reader.read_file(text, Source{name, folder}, {{file_identity(self), name}});
  for (const std::string& text_of_set : overrides) reader.read_override(text_of_set);
  if (config.run.name.empty()) config.run.name = fs::path(name).stem().string();
  validate(config);
  return config;
}

}  // namespace

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw Error(path + ": no such config file");
  return read(read_text(path), path, fs::path(path).parent_path().string(), overrides);
}

Config parse_config(const std::string& yaml_text, const std::string& name,
                    const std::string& folder, const std::vector<std::string>& overrides) {
  return read(yaml_text, name, folder, overrides);
}

std::string where(const Config& config, const std::string& key) {
  const auto it = config.origins.find(key);
  return it != config.origins.end() ? it->second : "'" + key + "' (default)";
}

}  // namespace focaldet::config
