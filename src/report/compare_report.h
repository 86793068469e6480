#pragma once
// The comparison report of `focaldet compare`: README.md (Markdown: what differs, final COCO
// metrics as mean and spread over seeds with the best marked, differences tested against the
// seed spread, the loss composition, the curves) with the PNG plots and CSV data it links, all
// in one folder. No torch here.
#include <string>
#include <utility>
#include <vector>

#include "report/compare.h"

namespace focaldet::report {

struct ReportOptions {
  std::string out_dir;
  std::string title = "focaldet run comparison";
  std::string command;  // how the runs were made, quoted in the report when set
  std::string notes;    // Markdown placed under the title (a person's reading of the results)
  std::string pivot_row, pivot_col;  // config keys for the AP table (rows x columns), optional
  bool plots = true;
};

// The Markdown of the report; `plots` are the PNG file names written beside it, and
// `extra_notes` go to the notes after the comparison's own.
std::string markdown_report(const Comparison& c, const ReportOptions& options,
                            const std::vector<std::string>& plots,
                            const std::vector<std::string>& extra_notes = {});

// The summary and the final metrics tables, for the terminal.
std::string console_summary(const Comparison& c);

// final_metrics.csv: one row per run with its final metrics. curves.csv: every log point.
std::string final_metrics_csv(const Comparison& c);
std::string curves_csv(const Comparison& c);

// Writes README.md, the CSVs and (when gnuplot is there) the plots into options.out_dir, each
// file atomically. Returns the warnings it met (a plot that failed, plots skipped), which the
// report's notes also list. Throws focaldet::Error when the folder cannot be made.
std::vector<std::string> write_report(const Comparison& c, const ReportOptions& options);

}  // namespace focaldet::report
