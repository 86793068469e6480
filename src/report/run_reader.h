#pragma once
// A run directory read back for comparison (DESIGN.md, "Run directory"): its config.yaml
// flattened to "section.key" -> value, the metrics.jsonl log lines and the eval.jsonl
// evaluations. Damage is survived, not hidden: a line that does not parse is skipped and named
// in `warnings` (file:line), so one corrupt line costs one point of a curve, not the report.
// No torch here.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace focaldet::report {

// One metrics.jsonl line: every numeric field by name ("loss", "easy_neg_share", ...).
struct LogPoint {
  int64_t iter = 0;
  std::map<std::string, double> values;
};

// One eval.jsonl line.
struct EvalPoint {
  int64_t iter = 0;
  std::string split;
  std::map<std::string, double> stats;           // "AP", "AP50", ... "ARl"
  std::map<std::string, double> ap_per_class;    // category name -> AP
  std::map<std::string, double> ap50_per_class;  // category name -> AP50
};

struct Run {
  std::string dir;                            // as given on the command line
  std::map<std::string, std::string> config;  // "loss.gamma" -> "2", "data.shorter_sides" -> "[320]"
  std::vector<LogPoint> log;                  // in file order
  std::vector<EvalPoint> evals;               // in file order
  bool finished = false;                      // train.log says "done:"
  int64_t last_iter = 0;                      // the latest iteration logged or evaluated
  std::vector<std::string> warnings;          // "runs/x/metrics.jsonl:12: not JSON (skipped)"

  // The config value, or "" when the key is absent.
  std::string get(const std::string& key) const;
};

// Reads the run in `dir`. Throws focaldet::Error when `dir` is not a run directory (no
// config.yaml, or a config.yaml that is not YAML); every other problem becomes a warning.
Run read_run(const std::string& dir);

}  // namespace focaldet::report
