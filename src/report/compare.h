#pragma once
// Runs grouped for comparison: runs whose configs differ only in the seed (and in where or how
// fast they ran) are seeds of one group; each metric is then a mean and a spread over seeds, and
// a difference between groups is tested against that spread (Welch's t-test). No torch here.
#include <cstdint>
#include <string>
#include <vector>

#include "report/run_reader.h"

namespace focaldet::report {

// Config keys that never make two runs different experiments.
bool is_incidental_key(const std::string& key);

// mean, sample standard deviation, min, max and count of the finite values.
struct Summary {
  double mean = 0, std = 0, min = 0, max = 0;
  int n = 0;
};
Summary summarize(const std::vector<double>& values);

// Welch's two-sided t-test at 95% on two groups' values: `significant` when the difference of
// means exceeds what the seed-to-seed spread explains. With fewer than 2 values on a side there
// is no spread to test against: `testable` is false.
struct Difference {
  double delta = 0;  // mean(b) - mean(a)
  double t = 0, df = 0;
  bool testable = false, significant = false;
};
Difference compare_means(const std::vector<double>& a, const std::vector<double>& b);

struct Group {
  std::string label;  // run.name when that tells groups apart, else the keys that differ
  std::vector<const Run*> runs;
};

struct Comparison {
  std::vector<Run> runs;                    // the runs compared, in command-line order
  std::vector<Group> groups;                // in order of first appearance
  std::vector<std::string> differing_keys;  // non-incidental keys whose value differs, sorted
  std::vector<std::string> notes;           // runs left out and why, lines skipped
};

// Groups `runs`. Runs evaluated on another dataset than the first run's (another val file name
// or other class names) cannot share a table: they are left out, named in notes.
Comparison build_comparison(std::vector<Run> runs);

// The run's last evaluation on the val split (or its last of any split); null before the first.
const EvalPoint* final_eval(const Run& run);

// The groups' values of one metric at the end of each run ("AP", or "AP/RBC" for a class):
// one value per run that has been evaluated.
std::vector<double> final_values(const Group& group, const std::string& metric);

// A curve over iterations for a group: the mean over its runs and the min..max band, on the
// union of the runs' iterations; each run counts between its first and last point (linear
// interpolation), so runs of different lengths or log intervals combine.
struct GroupCurve {
  std::vector<double> iter, mean, low, high;
};
// `field` is a metrics.jsonl field ("loss"), "AP" for the val AP curve, or "pos_per_image".
GroupCurve group_curve(const Group& group, const std::string& field);

// The value of a metric at each log point of one run ("pos_per_image" is num_pos over the
// run's data batch size).
std::vector<std::pair<double, double>> run_series(const Run& run, const std::string& field);

}  // namespace focaldet::report
