#include "report/run_reader.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"

namespace focaldet::report {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string scalar_text(const YAML::Node& node) {
  if (node.IsScalar()) return node.Scalar();
  if (node.IsNull()) return "";
  YAML::Emitter out;
  out << YAML::Flow << node;
  return out.c_str();
}

void flatten(const YAML::Node& node, const std::string& prefix,
             std::map<std::string, std::string>& out) {
  if (node.IsMap()) {
    for (const auto& item : node) {
      const std::string key = item.first.as<std::string>();
      flatten(item.second, prefix.empty() ? key : prefix + "." + key, out);
    }
  } else {
    out[prefix] = scalar_text(node);
  }
}

// Calls `on_line(json, where)` for each line of `path` that parses as a JSON object; every other
// line (torn by a crash, hand-edited) is named in `warnings`.
template <typename F>
void read_jsonl(const std::string& path, std::vector<std::string>& warnings, F on_line) {
  std::ifstream in(path);
  if (!in) return;
  std::string line;
  int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(number);
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) {
      warnings.push_back(where + ": not a JSON object (line skipped)");
      continue;
    }
    if (!j.contains("iter") || !j["iter"].is_number_integer()) {
      warnings.push_back(where + ": no integer \"iter\" (line skipped)");
      continue;
    }
    try {
      on_line(j, where);
    } catch (const json::exception&) {  // a field of the wrong type ("split": 3)
      warnings.push_back(where + ": a field has the wrong type (line skipped)");
    }
  }
}

std::map<std::string, double> numbers_of(const json& object) {
  std::map<std::string, double> out;
  if (!object.is_object()) return out;
  for (const auto& [key, value] : object.items())
    if (value.is_number()) out[key] = value.get<double>();
  return out;
}

}  // namespace

std::string Run::get(const std::string& key) const {
  const auto it = config.find(key);
  return it == config.end() ? std::string() : it->second;
}

Run read_run(const std::string& dir) {
  std::error_code ec;
  check(fs::is_directory(dir, ec), dir + ": not a folder");
  const std::string config_path = dir + "/config.yaml";
  check(fs::is_regular_file(config_path, ec),
        dir + ": not a run directory (no config.yaml; focaldet train makes run directories)");
  Run run;
  run.dir = dir;
  try {
    const YAML::Node root = YAML::LoadFile(config_path);
    check(root.IsMap(), config_path + ": not a focaldet config (no sections)");
    flatten(root, "", run.config);
  } catch (const YAML::Exception& e) {
    const std::string at = e.mark.is_null() ? "" : ":" + std::to_string(e.mark.line + 1);
    throw Error(config_path + at + ": cannot read it as YAML (" + e.msg + ")");
  }
  if (!fs::exists(dir + "/metrics.jsonl", ec))
    run.warnings.push_back(dir + ": no metrics.jsonl yet (no log step reached)");

  read_jsonl(dir + "/metrics.jsonl", run.warnings, [&](const json& j, const std::string&) {
    LogPoint p;
    p.iter = j["iter"].get<int64_t>();
    p.values = numbers_of(j);
    run.log.push_back(std::move(p));
    run.last_iter = std::max(run.last_iter, run.log.back().iter);
  });
  read_jsonl(dir + "/eval.jsonl", run.warnings, [&](const json& j, const std::string& where) {
    EvalPoint p;
    p.iter = j["iter"].get<int64_t>();
    p.split = j.value("split", std::string());
    p.stats = numbers_of(j);
    p.stats.erase("iter");
    p.stats.erase("seconds");
    if (!p.stats.count("AP")) {
      run.warnings.push_back(where + ": no \"AP\" (line skipped)");
      return;
    }
    if (j.contains("AP_per_class")) p.ap_per_class = numbers_of(j["AP_per_class"]);
    if (j.contains("AP50_per_class")) p.ap50_per_class = numbers_of(j["AP50_per_class"]);
    run.evals.push_back(std::move(p));
    run.last_iter = std::max(run.last_iter, run.evals.back().iter);
  });

  std::ifstream log(dir + "/train.log");
  std::string line;
  while (std::getline(log, line))
    if (line.find("] done: ") != std::string::npos) run.finished = true;
  return run;
}

}  // namespace focaldet::report
