#pragma once
// Line plots as PNG files, drawn by gnuplot (Debian: gnuplot-nox, its pngcairo terminal). The
// data and the commands go to gnuplot as one script on its stdin; the PNG is written to a temp
// file and renamed, so a failed plot never leaves half an image. No torch here.
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"

namespace focaldet::report {

// One line; with `low`/`high` (same length as x) a shaded band is drawn under it (e.g. the
// min..max over seeds). Points whose y is NaN are gaps.
struct Series {
  std::string label;
  std::vector<double> x, y;
  std::vector<double> low, high;
};

struct Panel {
  std::string title, x_label, y_label;  // labels carry units: "iteration", "AP (0-1)"
  std::vector<Series> series;
  bool log_x = false, log_y = false;
  std::optional<double> y_min, y_max;  // unset: gnuplot picks the range
  std::optional<double> x_min, x_max;
  std::string legend = "top right";  // gnuplot key position: "top left", "bottom right", ...
};

// One PNG of width x height pixels with its panels side by side (columns) or in a grid.
struct Figure {
  std::string title;  // over all panels; may be empty
  std::vector<Panel> panels;
  int columns = 1;
  int width = 1000, height = 640;
};

// Thrown when gnuplot is not installed: the caller may go on without plots.
class PlotUnavailable : public Error {
 public:
  using Error::Error;
};

// True when a gnuplot that can write PNG (pngcairo) is on PATH. Cached after the first call.
bool plotting_available();

// The gnuplot script for `figure` writing to `png_path` (data inline); exposed for tests.
std::string gnuplot_script(const Figure& figure, const std::string& png_path);

// Draws `figure` into `png_path` (atomically). Throws PlotUnavailable without gnuplot, and
// focaldet::Error with gnuplot's own message when it fails.
void write_png(const Figure& figure, const std::string& png_path);

}  // namespace focaldet::report
