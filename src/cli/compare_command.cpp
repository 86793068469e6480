// `focaldet compare RUN_DIR... --out DIR`: reads finished or running run directories, groups
// seeds of the same config, and writes the comparison report (README.md, plots, CSV) into DIR.
// A folder that is not a run, or a run on other data, is named and left out; the report is made
// from the rest.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "common/error.h"
#include "report/compare_report.h"
#include "report/run_reader.h"

namespace focaldet::cli {
namespace {

struct CompareArgs {
  std::vector<std::string> runs;
  std::string out_dir, title, command, notes_file, pivot;
  bool no_plots = false;
};

void run_compare(const CompareArgs& args) {
  report::ReportOptions options;
  options.out_dir = args.out_dir;
  if (!args.title.empty()) options.title = args.title;
  options.command = args.command;
  options.plots = !args.no_plots;
  if (!args.pivot.empty()) {
    const auto comma = args.pivot.find(',');
    check(comma != std::string::npos && comma > 0 && comma + 1 < args.pivot.size(),
          "--pivot: expected ROW_KEY,COLUMN_KEY (e.g. loss.gamma,loss.alpha), got '" +
              args.pivot + "'");
    options.pivot_row = args.pivot.substr(0, comma);
    options.pivot_col = args.pivot.substr(comma + 1);
  }
  if (!args.notes_file.empty()) {
    std::ifstream in(args.notes_file);
    check(static_cast<bool>(in), args.notes_file + ": cannot read the notes file");
    std::ostringstream text;
    text << in.rdbuf();
    options.notes = text.str();
  }

  std::vector<report::Run> runs;
  std::vector<std::string> skipped;
  for (const auto& dir : args.runs) {
    try {
      runs.push_back(report::read_run(dir));
    } catch (const Error& e) {
      skipped.push_back(std::string(e.what()) + " (left out)");
    }
  }
  for (const auto& s : skipped) spdlog::warn("{}", s);
  check(!runs.empty(), "compare: none of the " + std::to_string(args.runs.size()) +
                           " folders given is a run directory");
  report::Comparison c = report::build_comparison(std::move(runs));
  c.notes.insert(c.notes.begin(), skipped.begin(), skipped.end());
  if (!options.pivot_row.empty())
    for (const auto& key : {options.pivot_row, options.pivot_col})
      check(!c.runs.front().get(key).empty() || c.runs.front().config.count(key),
            "--pivot: '" + key + "' is not a config key of " + c.runs.front().dir);
  for (size_t i = skipped.size(); i < c.notes.size(); ++i) spdlog::warn("{}", c.notes[i]);
  for (const auto& w : report::write_report(c, options)) spdlog::warn("{}", w);
  std::cout << report::console_summary(c) << std::flush;
  spdlog::info("{} runs in {} groups -> {}/README.md", c.runs.size(), c.groups.size(),
               options.out_dir);
}

}  // namespace

void register_compare_command(CLI::App& app) {
  auto args = std::make_shared<CompareArgs>();
  CLI::App* cmd = app.add_subcommand(
      "compare", "Compare runs (e.g. focal vs cross-entropy): a Markdown report with tables and "
                 "plots; seeds of one config are grouped into mean and spread");
  cmd->add_option("RUN_DIR", args->runs, "run directories (focaldet train's output)")->required();
  cmd->add_option("--out", args->out_dir, "folder for README.md, the plots and the CSVs")
      ->required();
  cmd->add_option("--title", args->title, "the report's title");
  cmd->add_option("--command", args->command, "the command that made the runs, quoted in the report");
  cmd->add_option("--notes", args->notes_file, "a Markdown file placed under the title");
  cmd->add_option("--pivot", args->pivot,
                  "ROW_KEY,COLUMN_KEY: an AP table over two config keys (loss.gamma,loss.alpha)");
  cmd->add_flag("--no-plots", args->no_plots, "tables and CSV only");
  cmd->callback([args] { run_compare(*args); });
}

}  // namespace focaldet::cli
