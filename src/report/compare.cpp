#include "report/compare.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

namespace focaldet::report {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Two-sided 95% critical values of Student's t for 1..30 degrees of freedom.
constexpr double kT95[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                           2.201,  2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                           2.080,  2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};

double t_critical(double df) {
  // Round the (fractional) Welch df down: the test stays conservative.
  const int k = static_cast<int>(std::floor(df));
  if (k < 1) return kT95[0];
  if (k > 30) return k > 120 ? 1.96 : k > 60 ? 1.98 : k > 40 ? 2.00 : 2.021;
  return kT95[k - 1];
}

// What a run's AP is measured on: the val file (config.yaml holds it resolved), the class
// count, and the class names once it has been evaluated (empty before).
struct Dataset {
  std::string val_file, num_classes;
  std::vector<std::string> classes;
};

Dataset dataset_of(const Run& run) {
  Dataset d{run.get("data.val"), run.get("data.num_classes"), {}};
  if (const EvalPoint* e = final_eval(run))
    for (const auto& [name, ap] : e->ap_per_class) d.classes.push_back(name);
  return d;
}

// Same data when the val files and class counts are the same and the class names agree where both runs
// have been evaluated.
bool same_data(const Dataset& a, const Dataset& b) {
  return a.val_file == b.val_file && a.num_classes == b.num_classes &&
         (a.classes.empty() || b.classes.empty() || a.classes == b.classes);
}

std::string describe(const Dataset& d) {
  std::string text = "val file " + d.val_file;
  if (!d.classes.empty()) {
    text += ", classes";
    for (const auto& name : d.classes) text += " " + name;
  }
  return text;
}

// "loss.gamma" -> "gamma", unless another of `keys` ends the same ("schedule.gamma").
std::string short_key(const std::string& key, const std::vector<std::string>& keys) {
  const std::string last = key.substr(key.rfind('.') + 1);
  for (const auto& other : keys)
    if (other != key && other.substr(other.rfind('.') + 1) == last) return key;
  return last;
}

std::map<std::string, std::string> experiment_keys(const Run& run) {
  std::map<std::string, std::string> keys;
  for (const auto& [k, v] : run.config)
    if (!is_incidental_key(k)) keys[k] = v;
  return keys;
}

}  // namespace

bool is_incidental_key(const std::string& key) {
  static const std::set<std::string> keys = {"run.seed",        "run.name",
                                             "run.output_dir",  "run.threads",
                                             "data.num_workers", "train.checkpoint_every",
                                             "train.log_every", "train.eval_every",
                                             "train.progress"};
  return keys.count(key) > 0;
}

Summary summarize(const std::vector<double>& values) {
  Summary s;
  double sum = 0;
  s.min = std::numeric_limits<double>::infinity();
  s.max = -s.min;
  for (double v : values) {
    if (!std::isfinite(v)) continue;
    ++s.n;
    sum += v;
    s.min = std::min(s.min, v);
    s.max = std::max(s.max, v);
  }
  if (s.n == 0) return Summary{kNaN, kNaN, kNaN, kNaN, 0};
  s.mean = sum / s.n;
  double sq = 0;
  for (double v : values)
    if (std::isfinite(v)) sq += (v - s.mean) * (v - s.mean);
  s.std = s.n > 1 ? std::sqrt(sq / (s.n - 1)) : 0.0;
  return s;
}

Difference compare_means(const std::vector<double>& a, const std::vector<double>& b) {
  const Summary sa = summarize(a), sb = summarize(b);
  Difference d;
  d.delta = sb.mean - sa.mean;
  if (sa.n < 2 || sb.n < 2) return d;
  const double va = sa.std * sa.std / sa.n, vb = sb.std * sb.std / sb.n;
  d.testable = true;
  if (va + vb == 0) {  // no spread at all: any difference is real
    d.t = d.delta == 0 ? 0 : std::numeric_limits<double>::infinity();
    d.df = sa.n + sb.n - 2;
    d.significant = d.delta != 0;
    return d;
  }
  d.t = d.delta / std::sqrt(va + vb);
  // Welch-Satterthwaite degrees of freedom.
  d.df = (va + vb) * (va + vb) / (va * va / (sa.n - 1) + vb * vb / (sb.n - 1));
  d.significant = std::abs(d.t) > t_critical(d.df);
  return d;
}

const EvalPoint* final_eval(const Run& run) {
  for (auto it = run.evals.rbegin(); it != run.evals.rend(); ++it)
    if (it->split == "val") return &*it;
  return run.evals.empty() ? nullptr : &run.evals.back();
}

Comparison build_comparison(std::vector<Run> runs) {
  Comparison c;
  if (runs.empty()) return c;
  // The reference: the first run, with the class names of the first evaluated run like it.
  Dataset reference = dataset_of(runs.front());
  const std::string reference_dir = runs.front().dir;
  for (const auto& run : runs) {
    const Dataset d = dataset_of(run);
    if (reference.classes.empty() && same_data(reference, d)) reference.classes = d.classes;
  }
  for (auto& run : runs) {
    const Dataset d = dataset_of(run);
    if (!same_data(reference, d)) {
      c.notes.push_back(run.dir + ": left out, it is evaluated on other data (" + describe(d) +
                        ") than " + reference_dir + " (" + describe(reference) + ")");
      continue;
    }
    for (const auto& w : run.warnings) c.notes.push_back(w);
    if (!run.finished)
      c.notes.push_back(run.dir + ": not finished (in progress or stopped) at iteration " +
                        std::to_string(run.last_iter) + "; its latest values are used");
    if (run.evals.empty()) c.notes.push_back(run.dir + ": no evaluation yet");
    c.runs.push_back(std::move(run));
  }

  // Keys whose value is not the same in every run.
  std::set<std::string> all_keys;
  for (const auto& run : c.runs)
    for (const auto& [k, v] : experiment_keys(run)) all_keys.insert(k);
  for (const auto& key : all_keys) {
    std::set<std::string> values;
    for (const auto& run : c.runs) values.insert(run.get(key));
    if (values.size() > 1) c.differing_keys.push_back(key);
  }

  std::vector<std::map<std::string, std::string>> group_keys;
  for (const auto& run : c.runs) {
    const auto keys = experiment_keys(run);
    size_t g = 0;
    while (g < group_keys.size() && group_keys[g] != keys) ++g;
    if (g == group_keys.size()) {
      group_keys.push_back(keys);
      c.groups.push_back(Group{});
    }
    c.groups[g].runs.push_back(&run);
  }

  // Labels: the run name where it tells a group apart; where several groups share a name, the
  // keys that differ among them are added ("bccd_focal gamma=2"); the name is left out when
  // every group has the same one.
  std::map<std::string, std::vector<size_t>> by_name;
  for (size_t g = 0; g < c.groups.size(); ++g)
    by_name[c.groups[g].runs.front()->get("run.name")].push_back(g);
  for (const auto& [name, members] : by_name) {
    std::vector<std::string> keys;
    for (const auto& key : c.differing_keys) {
      std::set<std::string> values;
      for (size_t g : members) values.insert(c.groups[g].runs.front()->get(key));
      if (values.size() > 1) keys.push_back(key);
    }
    for (size_t g : members) {
      std::string label = by_name.size() > 1 || keys.empty() ? name : "";
      for (const auto& key : keys)
        label += (label.empty() ? "" : " ") + short_key(key, keys) + "=" +
                 c.groups[g].runs.front()->get(key);
      c.groups[g].label = label.empty() ? c.groups[g].runs.front()->dir : label;
    }
  }
  return c;
}

std::vector<double> final_values(const Group& group, const std::string& metric) {
  std::vector<double> values;
  const auto slash = metric.find('/');
  for (const Run* run : group.runs) {
    const EvalPoint* e = final_eval(*run);
    if (!e) continue;
    const auto& table = slash == std::string::npos ? e->stats : e->ap_per_class;
    const auto it = table.find(slash == std::string::npos ? metric : metric.substr(slash + 1));
    if (it != table.end()) values.push_back(it->second);
  }
  return values;
}

std::vector<std::pair<double, double>> run_series(const Run& run, const std::string& field) {
  std::vector<std::pair<double, double>> points;
  if (field == "AP") {
    for (const auto& e : run.evals)
      if (e.split == "val" || e.split.empty()) points.emplace_back(e.iter, e.stats.at("AP"));
  } else if (field == "pos_per_image") {
    // num_pos counts the global batch: its images are logged (data-parallel runs: batch_size
    // x ranks); logs written before that have one process's train.batch_size.
    const double batch_size = std::atof(run.get("train.batch_size").c_str());
    for (const auto& p : run.log) {
      const auto it = p.values.find("num_pos");
      const auto images = p.values.find("images");
      const double batch = images != p.values.end() ? images->second : batch_size;
      if (it != p.values.end() && batch > 0) points.emplace_back(p.iter, it->second / batch);
    }
  } else {
    for (const auto& p : run.log) {
      const auto it = p.values.find(field);
      if (it != p.values.end()) points.emplace_back(p.iter, it->second);
    }
  }
  // Sorted by iteration, one point per iteration (a resumed run's later line wins).
  std::stable_sort(points.begin(), points.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::pair<double, double>> unique;
  for (const auto& p : points) {
    if (!unique.empty() && unique.back().first == p.first)
      unique.back() = p;
    else
      unique.push_back(p);
  }
  return unique;
}

GroupCurve group_curve(const Group& group, const std::string& field) {
  std::vector<std::vector<std::pair<double, double>>> series;
  std::set<double> iters;
  for (const Run* run : group.runs) {
    series.push_back(run_series(*run, field));
    for (const auto& p : series.back()) iters.insert(p.first);
  }
  GroupCurve curve;
  for (double x : iters) {
    std::vector<double> values;
    for (const auto& s : series) {
      if (s.empty() || x < s.front().first || x > s.back().first) continue;
      const auto hi = std::lower_bound(s.begin(), s.end(), x,
                                       [](const auto& p, double v) { return p.first < v; });
      if (hi->first == x) {
        values.push_back(hi->second);
      } else {
        const auto lo = hi - 1;
        const double w = (x - lo->first) / (hi->first - lo->first);
        values.push_back(lo->second + w * (hi->second - lo->second));
      }
    }
    const Summary s = summarize(values);
    if (s.n == 0) continue;
    curve.iter.push_back(x);
    curve.mean.push_back(s.mean);
    curve.low.push_back(s.min);
    curve.high.push_back(s.max);
  }
  return curve;
}

}  // namespace focaldet::report
