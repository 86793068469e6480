#include "eval/eval_report.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "common/atomic_file.h"

namespace focaldet::eval {

std::string format_report(const CocoEvalResult& result) {
  std::string out;
  for (const auto& line : summary_lines(result)) out += line + "\n";
  std::size_t width = 8;
  for (const auto& name : result.category_names) width = std::max(width, name.size());
  char buf[64];
  out += "\n" + std::string("category") + std::string(width - 8, ' ') + "      AP    AP50\n";
  for (std::size_t k = 0; k < result.category_ids.size(); ++k) {
    std::string name = result.category_names[k];
    if (name.empty()) name = std::to_string(result.category_ids[k]);
    out += name + std::string(width - std::min(width, name.size()), ' ');
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
