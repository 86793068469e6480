#include "report/compare_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>
#include <sstream>

#include "common/atomic_file.h"
#include "report/format.h"
#include "report/plot.h"

namespace focaldet::report {
namespace {

const std::vector<std::string> kStats = {"AP", "AP50", "AP75", "APs", "APm", "APl", "AR100"};

// "0.531 ± 0.004" over seeds, "0.531" for one run, "–" for none.
std::string mean_spread(const Summary& s) {
  if (s.n == 0) return "–";
  if (s.n == 1) return fixed(s.mean);
  return fixed(s.mean) + " ± " + fixed(s.std);
}

std::string row(const std::vector<std::string>& cells) {
  std::string out = "|";
  for (const auto& c : cells) out += " " + c + " |";
  return out + "\n";
}

std::string table(const std::vector<std::string>& header,
                  const std::vector<std::vector<std::string>>& rows) {
  std::string out = row(header);
  out += "|";
  for (size_t i = 0; i < header.size(); ++i) out += i == 0 ? " --- |" : " ---: |";
  out += "\n";
  for (const auto& r : rows) out += row(r);
  return out;
}

// Class names of the compared runs' evaluations, in the order the first evaluated run has them.
std::vector<std::string> class_names(const Comparison& c) {
  for (const auto& run : c.runs)
    if (const EvalPoint* e = final_eval(run)) {
      std::vector<std::string> names;
      for (const auto& [name, ap] : e->ap_per_class) names.push_back(name);
      return names;
    }
  return {};
}

// The last log point's value of `field`, per run of the group.
std::vector<double> last_log_values(const Group& g, const std::string& field) {
  std::vector<double> values;
  for (const Run* run : g.runs) {
    const auto series = run_series(*run, field);
    if (!series.empty()) values.push_back(series.back().second);
  }
  return values;
}

// The mean over a run's log points of `field` (the whole training), per run of the group.
std::vector<double> mean_log_values(const Group& g, const std::string& field) {
  std::vector<double> values;
  for (const Run* run : g.runs) {
    const auto series = run_series(*run, field);
    double sum = 0;
    for (const auto& p : series) sum += p.second;
    if (!series.empty()) values.push_back(sum / series.size());
  }
  return values;
}

std::string seeds_of(const Group& g) {
  std::string out;
  for (const Run* r : g.runs) out += (out.empty() ? "" : ", ") + r->get("run.seed");
  return out;
}

// The group the others are measured against: the first one with an evaluated run.
const Group& reference_group(const Comparison& c) {
  for (const auto& g : c.groups)
    if (!final_values(g, "AP").empty()) return g;
  return c.groups.front();
}

std::string summary_section(const Comparison& c) {
  std::ostringstream out;
  const Group& ref = reference_group(c);
  const Summary ref_ap = summarize(final_values(ref, "AP"));
  out << "## Summary\n\n";
  out << "Final val AP (mean ± sample standard deviation over seeds; a difference *exceeds the "
         "seed spread* when Welch's t-test rejects equal means at 95%):\n\n";
  for (const auto& g : c.groups) {
    const auto values = final_values(g, "AP");
    const Summary s = summarize(values);
    out << "- **" << g.label << "**: AP " << mean_spread(s) << " (" << s.n
        << (s.n == 1 ? " run" : " runs") << ")";
    if (&g != &ref && s.n > 0 && ref_ap.n > 0) {
      const Difference d = compare_means(final_values(ref, "AP"), values);
      out << ", " << fixed(std::abs(d.delta)) << (d.delta >= 0 ? " above " : " below ")
          << ref.label;
      if (!d.testable)
        out << " (one run a side: no spread to judge it by)";
      else if (d.significant)
        out << ": more than the seed spread explains (t = " << fixed(d.t, 2) << ")";
      else
        out << ": within the seed spread (t = " << fixed(d.t, 2) << ")";
    }
    const Summary easy = summarize(last_log_values(g, "easy_neg_share"));
    if (easy.n > 0)
      out << "; easy negatives carry " << percent(easy.mean)
          << " of the classification loss at the last log step";
    out << ".\n";
  }
  return out.str() + "\n";
}

std::string runs_section(const Comparison& c) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& g : c.groups)
    for (const Run* r : g.runs) {
      const EvalPoint* e = final_eval(*r);
      rows.push_back({"`" + r->dir + "`", g.label, r->get("run.seed"),
                      std::to_string(r->last_iter), r->finished ? "finished" : "not finished",
                      e ? fixed(e->stats.at("AP")) + " (iter " + std::to_string(e->iter) + ")"
                        : "no eval yet"});
    }
  return "## Runs\n\n" +
         table({"run", "group", "seed", "iterations", "status", "last val AP"}, rows) + "\n";
}

std::string config_section(const Comparison& c) {
  std::vector<std::string> header = {"config key"};
  for (const auto& g : c.groups) header.push_back(g.label);
  std::vector<std::vector<std::string>> rows;
  for (const auto& key : c.differing_keys) {
    std::vector<std::string> r = {"`" + key + "`"};
    for (const auto& g : c.groups) r.push_back(g.runs.front()->get(key));
    rows.push_back(r);
  }
  std::vector<std::string> seeds = {"`run.seed`"};
  for (const auto& g : c.groups) seeds.push_back(seeds_of(g));
  rows.push_back(seeds);
  std::string text = "## Config keys that differ\n\n";
  if (c.differing_keys.empty()) text += "Only the seed differs between the runs.\n\n";
  return text + table(header, rows) + "\n";
}

// A table of group means with the best (highest) mean of each column in bold.
std::string metrics_table(const Comparison& c, const std::vector<std::string>& metrics,
                          const std::vector<std::string>& headers) {
  std::vector<std::vector<Summary>> cells(c.groups.size());
  std::vector<double> best(metrics.size(), -1e300);
  for (size_t g = 0; g < c.groups.size(); ++g)
    for (size_t m = 0; m < metrics.size(); ++m) {
      cells[g].push_back(summarize(final_values(c.groups[g], metrics[m])));
      if (cells[g][m].n > 0) best[m] = std::max(best[m], cells[g][m].mean);
    }
  std::vector<std::string> header = {"group", "runs"};
  header.insert(header.end(), headers.begin(), headers.end());
  std::vector<std::vector<std::string>> rows;
  for (size_t g = 0; g < c.groups.size(); ++g) {
    std::vector<std::string> r = {c.groups[g].label, std::to_string(cells[g].empty() ? 0 : cells[g][0].n)};
    for (size_t m = 0; m < metrics.size(); ++m) {
      const std::string text = mean_spread(cells[g][m]);
      const bool is_best = cells[g][m].n > 0 && cells[g][m].mean == best[m] && c.groups.size() > 1;
      r.push_back(is_best ? "**" + text + "**" : text);
    }
    rows.push_back(r);
  }
  return table(header, rows);
}

std::string metrics_section(const Comparison& c) {
  std::string text =
      "## Final COCO metrics\n\nThe last evaluation of each run on the val split, as mean ± "
      "sample standard deviation over the group's runs (seeds); the best mean of each column in "
      "bold.\n\n";
  text += metrics_table(c, kStats, kStats) + "\n";
  const auto names = class_names(c);
  if (!names.empty()) {
    std::vector<std::string> metrics, headers;
    for (const auto& n : names) {
      metrics.push_back("AP/" + n);
      headers.push_back("AP " + n);
    }
    text += "AP per class:\n\n" + metrics_table(c, metrics, headers) + "\n";
  }
  return text;
}

std::string differences_section(const Comparison& c) {
  if (c.groups.size() < 2) return "";
  const Group& ref = reference_group(c);
  std::vector<std::string> header = {"group"};
  std::vector<std::string> metrics = {"AP", "AP50", "AP75"};
  for (const auto& m : class_names(c)) metrics.push_back("AP/" + m);
  for (const auto& m : metrics) header.push_back("Δ " + m);
  std::vector<std::vector<std::string>> rows;
  for (size_t g = 0; g < c.groups.size(); ++g) {
    if (&c.groups[g] == &ref) continue;
    std::vector<std::string> r = {c.groups[g].label};
    for (const auto& m : metrics) {
      const auto a = final_values(ref, m), b = final_values(c.groups[g], m);
      if (a.empty() || b.empty()) {
        r.push_back("–");
        continue;
      }
      const Difference d = compare_means(a, b);
      std::string cell = (d.delta >= 0 ? "+" : "") + fixed(d.delta);
      if (d.testable) cell += d.significant ? " (beyond spread)" : " (within spread)";
      r.push_back(cell);
    }
    rows.push_back(r);
  }
  return "## Differences from " + ref.label +
         "\n\nEach group's mean minus " + ref.label +
         "'s. *Beyond spread*: Welch's t-test (two-sided, 95%) says the seeds' spread does not "
         "explain it; *within spread*: it may be noise. No verdict with one run a side.\n\n" +
         table(header, rows) + "\n";
}

std::string loss_section(const Comparison& c) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& g : c.groups) {
    const double cls = summarize(last_log_values(g, "loss_cls")).mean;
    const double pos = summarize(last_log_values(g, "loss_cls_pos")).mean;
    const double hard = summarize(last_log_values(g, "loss_cls_neg_hard")).mean;
    rows.push_back({g.label, fixed(summarize(last_log_values(g, "loss")).mean, 4), fixed(cls, 4),
                    percent(pos / cls), percent(hard / cls),
                    percent(summarize(last_log_values(g, "easy_neg_share")).mean),
                    percent(summarize(mean_log_values(g, "easy_neg_share")).mean),
                    fixed(summarize(last_log_values(g, "pos_per_image")).mean, 1)});
  }
  return "## Where the classification loss comes from\n\nAt the last log step (means over the "
         "group's runs): the share of the classification loss carried by positive anchors, hard "
         "negatives and easy negatives (background anchors the model already gets right, "
         "p(background) >= 0.9); then the easy negatives' share averaged over the whole run. "
         "Losses are each run's own (focal and cross-entropy losses are on different scales).\n\n" +
         table({"group", "loss", "cls loss", "positives", "hard negatives", "easy negatives",
                "easy negatives (run mean)", "positives / image"},
               rows) +
         "\n";
}

std::string pivot_section(const Comparison& c, const ReportOptions& o) {
  if (o.pivot_row.empty()) return "";
  auto numeric_less = [](const std::string& a, const std::string& b) {
    char* ea = nullptr;
    char* eb = nullptr;
    const double va = std::strtod(a.c_str(), &ea), vb = std::strtod(b.c_str(), &eb);
    if (*ea == 0 && *eb == 0 && !a.empty() && !b.empty()) return va < vb;
    return a < b;
  };
  std::vector<std::string> rows_v, cols_v;
  for (const auto& g : c.groups) {
    const std::string r = g.runs.front()->get(o.pivot_row), k = g.runs.front()->get(o.pivot_col);
    if (std::find(rows_v.begin(), rows_v.end(), r) == rows_v.end()) rows_v.push_back(r);
    if (std::find(cols_v.begin(), cols_v.end(), k) == cols_v.end()) cols_v.push_back(k);
  }
  std::sort(rows_v.begin(), rows_v.end(), numeric_less);
  std::sort(cols_v.begin(), cols_v.end(), numeric_less);
  std::string text = "## AP by " + o.pivot_row + " and " + o.pivot_col + "\n\n";
  for (const std::string metric : {"AP", "AP50"}) {
    double best = -1e300;
    for (const auto& g : c.groups) {
      const Summary s = summarize(final_values(g, metric));
      if (s.n) best = std::max(best, s.mean);
    }
    std::vector<std::string> header = {metric + ": " + o.pivot_row + " \\ " + o.pivot_col};
    for (const auto& k : cols_v) header.push_back(k);
    std::vector<std::vector<std::string>> rows;
    for (const auto& r : rows_v) {
      std::vector<std::string> cells = {r};
      for (const auto& k : cols_v) {
        std::string cell = "–";
        int groups_here = 0;
        for (const auto& g : c.groups)
          if (g.runs.front()->get(o.pivot_row) == r && g.runs.front()->get(o.pivot_col) == k) {
            const Summary s = summarize(final_values(g, metric));
            cell = mean_spread(s);
            if (s.n && s.mean == best) cell = "**" + cell + "**";
            ++groups_here;
          }
        // Other keys differ too: several groups share this cell, and one number would hide it.
        if (groups_here > 1) cell = std::to_string(groups_here) + " groups (see above)";
        cells.push_back(cell);
      }
      rows.push_back(cells);
    }
    text += table(header, rows) + "\n";
  }
  return text;
}

Panel curve_panel(const Comparison& c, const std::string& field, const std::string& title,
                  const std::string& y_label, double scale = 1.0) {
  Panel p;
  p.title = title;
  p.x_label = "iteration";
  p.y_label = y_label;
  p.legend = "below";  // under the plot, in columns: never over the curves
  for (const auto& g : c.groups) {
    const GroupCurve curve = group_curve(g, field);
    if (curve.iter.empty()) continue;
    Series s;
    s.label = g.runs.size() > 1 ? g.label + " (mean of " + std::to_string(g.runs.size()) + ")"
                                : g.label;
    s.x = curve.iter;
    for (size_t i = 0; i < curve.iter.size(); ++i) {
      s.y.push_back(scale * curve.mean[i]);
      if (g.runs.size() > 1) {
        s.low.push_back(scale * curve.low[i]);
        s.high.push_back(scale * curve.high[i]);
      }
    }
    p.series.push_back(std::move(s));
  }
  return p;
}

struct PlotSpec {
  std::string file, caption;
  Figure figure;
};

std::vector<PlotSpec> plot_specs(const Comparison& c) {
  const std::string band = " Shaded: min to max over seeds.";
  std::vector<PlotSpec> specs;
  Figure loss;
  loss.columns = 2;
  loss.width = 1400;
  loss.height = 560;
  loss.panels = {curve_panel(c, "loss", "Total loss (classification + box)", "loss per image"),
                 curve_panel(c, "loss_cls", "Classification loss", "loss per image")};
  // Cross-entropy starts an order of magnitude above focal loss: a log scale shows both.
  for (auto& panel : loss.panels) panel.log_y = true;
  loss.height = 640;
  specs.push_back({"loss.png", "Training loss over iterations (each loss on its own scale)." + band,
                   loss});
  Figure easy;
  easy.panels = {curve_panel(c, "easy_neg_share",
                             "Share of the classification loss carried by easy negatives",
                             "easy negatives' share (%)", 100.0)};
  easy.panels[0].y_min = 0;
  specs.push_back({"easy_negative_share.png",
                   "Easy negatives (background anchors with p(background) >= 0.9) as a share of "
                   "the classification loss." + band,
                   easy});
  Figure pos;
  pos.panels = {curve_panel(c, "pos_per_image", "Positive anchors per image",
                            "positive anchors per image")};
  pos.panels[0].y_min = 0;
  specs.push_back({"positives_per_image.png",
                   "Anchors the assigner labels positive, per training image." + band, pos});
  Figure ap;
  ap.panels = {curve_panel(c, "AP", "Val AP over training", "COCO AP@[.5:.95] (0-1)")};
  ap.panels[0].y_min = 0;
  specs.push_back({"val_ap.png", "COCO AP on the val split at each evaluation." + band, ap});
  return specs;
}

}  // namespace

std::string markdown_report(const Comparison& c, const ReportOptions& o,
                            const std::vector<std::string>& plots,
                            const std::vector<std::string>& extra_notes) {
  std::string text = "# " + o.title + "\n\n";
  if (!o.notes.empty()) text += o.notes + (o.notes.back() == '\n' ? "\n" : "\n\n");
  if (!o.command.empty())
    text += "Made by `" + o.command + "` (runs, then `focaldet compare`). Data: `final_metrics.csv`, `curves.csv`.\n\n";
  if (c.groups.empty()) return text + "No runs to compare.\n";
  text += summary_section(c);
  text += runs_section(c);
  text += config_section(c);
  text += metrics_section(c);
  text += differences_section(c);
  text += pivot_section(c, o);
  text += loss_section(c);
  if (!plots.empty()) {
    text += "## Curves\n\n";
    for (const auto& spec : plot_specs(c))
      if (std::find(plots.begin(), plots.end(), spec.file) != plots.end())
        text += spec.caption + "\n\n![" + spec.file + "](" + spec.file + ")\n\n";
  }
  if (!c.notes.empty() || !extra_notes.empty()) {
    text += "## Notes\n\n";
    for (const auto& n : c.notes) text += "- " + n + "\n";
    for (const auto& n : extra_notes) text += "- " + n + "\n";
    text += "\n";
  }
  return text;
}

std::string console_summary(const Comparison& c) {
  if (c.groups.empty()) return "No runs to compare.\n";
  return summary_section(c) + metrics_section(c);
}

std::string final_metrics_csv(const Comparison& c) {
  const auto names = class_names(c);
  std::string out = "run,group,seed,iter";
  for (const auto& s : kStats) out += "," + s;
  for (const auto& n : names) out += "," + csv_field("AP_" + n);
  out += "\n";
  for (const auto& g : c.groups)
    for (const Run* r : g.runs) {
      const EvalPoint* e = final_eval(*r);
      if (!e) continue;
      out += csv_field(r->dir) + "," + csv_field(g.label) + "," + r->get("run.seed") + "," +
             std::to_string(e->iter);
      for (const auto& s : kStats) out += "," + (e->stats.count(s) ? number(e->stats.at(s)) : "");
      for (const auto& n : names)
        out += "," + (e->ap_per_class.count(n) ? number(e->ap_per_class.at(n)) : "");
      out += "\n";
    }
  return out;
}

std::string curves_csv(const Comparison& c) {
  const std::vector<std::string> fields = {"loss", "loss_cls", "loss_box", "easy_neg_share",
                                           "pos_per_image", "AP"};
  std::string out = "run,group,field,iter,value\n";
  for (const auto& g : c.groups)
    for (const Run* r : g.runs)
      for (const auto& f : fields)
        for (const auto& [iter, value] : run_series(*r, f))
          out += csv_field(r->dir) + "," + csv_field(g.label) + "," + f + "," + number(iter) +
                 "," + number(value) + "\n";
  return out;
}

std::vector<std::string> write_report(const Comparison& c, const ReportOptions& o) {
  std::error_code ec;
  std::filesystem::create_directories(o.out_dir, ec);
  check(!ec, o.out_dir + ": cannot create the report folder: " + ec.message());
  std::vector<std::string> warnings, plots;
  if (o.plots && !c.groups.empty()) {
    for (const auto& spec : plot_specs(c)) {
      try {
        write_png(spec.figure, o.out_dir + "/" + spec.file);
        plots.push_back(spec.file);
      } catch (const PlotUnavailable& e) {
        warnings.push_back(e.what());
        break;
      } catch (const Error& e) {  // one plot failing costs that plot, not the report
        warnings.push_back(e.what());
      }
    }
  }
  write_file_atomic(o.out_dir + "/final_metrics.csv", final_metrics_csv(c));
  write_file_atomic(o.out_dir + "/curves.csv", curves_csv(c));
  write_file_atomic(o.out_dir + "/README.md", markdown_report(c, o, plots, warnings));
  return warnings;
}

}  // namespace focaldet::report
