#include "report/plot.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "report/format.h"

extern char** environ;

namespace focaldet::report {
namespace {

// Matplotlib's tab10: distinct, and readable by most colour-blind readers.
const char* const kColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                               "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
constexpr int kNumColors = 10;

// A gnuplot single-quoted string: nothing in it is interpreted ('' is a quote). Double quotes
// would run `backquoted` text as a shell command, and labels come from run names and paths.
std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "''";
    else if (c == '\n' || c == '\r') out += ' ';
    else out += c;
  }
  return out + "'";
}

// Series `s` as a datablock: x y [low high] per line, a blank line where y is NaN (a gap).
void write_datablock(std::ostringstream& out, const std::string& name, const Series& s) {
  check(s.x.size() == s.y.size(), "plot: series '" + s.label + "' has " +
                                      std::to_string(s.x.size()) + " x and " +
                                      std::to_string(s.y.size()) + " y values");
  const bool band = !s.low.empty();
  check(!band || (s.low.size() == s.y.size() && s.high.size() == s.y.size()),
        "plot: series '" + s.label + "' has a band of another length");
  out << name << " << EOD\n";
  for (size_t i = 0; i < s.x.size(); ++i) {
    if (!std::isfinite(s.y[i]) || !std::isfinite(s.x[i])) {
      out << "\n";
      continue;
    }
    out << number(s.x[i]) << ' ' << number(s.y[i]);
    if (band) out << ' ' << number(s.low[i]) << ' ' << number(s.high[i]);
    out << '\n';
  }
  out << "EOD\n";
}

std::string range(const std::optional<double>& lo, const std::optional<double>& hi) {
  return "[" + (lo ? number(*lo) : std::string("*")) + ":" + (hi ? number(*hi) : std::string("*")) +
         "]";
}

// Runs `gnuplot script_path`; returns its exit status (127: not installed) and fills `output`
// with what it printed.
int run_gnuplot(const std::vector<std::string>& args, std::string* output) {
  char log_path[] = "/tmp/focaldet-gnuplot-XXXXXX";
  const int log_fd = mkstemp(log_path);
  check(log_fd >= 0, std::string("plot: cannot create a temp file: ") + std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, log_fd, 1);
  posix_spawn_file_actions_adddup2(&actions, log_fd, 2);
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>("gnuplot"));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, "gnuplot", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  int status = 127;
  if (rc == 0) {
    int wstatus = 0;
    while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
    }
    status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
  }
  close(log_fd);
  if (output) {
    std::ifstream in(log_path);
    std::ostringstream text;
    text << in.rdbuf();
    *output = text.str();
  }
  unlink(log_path);
  return status;
}

}  // namespace

bool plotting_available() {
  static const bool available = run_gnuplot({"-e", "set terminal pngcairo"}, nullptr) == 0;
  return available;
}

std::string gnuplot_script(const Figure& figure, const std::string& png_path) {
  std::ostringstream out;
  out << "set terminal pngcairo size " << figure.width << "," << figure.height
      << " noenhanced font \"DejaVu Sans,11\" linewidth 1.5\n";
  out << "set output " << quoted(png_path) << "\n";
  int block = 0;
  for (const auto& panel : figure.panels)
    for (const auto& s : panel.series) write_datablock(out, "$d" + std::to_string(block++), s);
  const int columns = std::max(1, figure.columns);
  const int rows = (static_cast<int>(figure.panels.size()) + columns - 1) / columns;
  out << "set multiplot layout " << std::max(1, rows) << "," << columns;
  if (!figure.title.empty()) out << " title " << quoted(figure.title) << " font \",14\"";
  out << "\n";
  block = 0;
  for (const auto& panel : figure.panels) {
    // reset clears styles too: the translucent fill for the seed bands is set per panel.
    out << "reset\nset grid lc rgb \"#dddddd\"\nset border lc rgb \"#555555\"\n"
           "set style fill transparent solid 0.18 noborder\n";
    out << "set title " << quoted(panel.title) << " font \",12\"\n";
    out << "set xlabel " << quoted(panel.x_label) << "\nset ylabel " << quoted(panel.y_label)
        << "\n";
    if (panel.legend == "below")  // under the x label, text after its line sample
      out << "set key below Left reverse nobox height 1.5 samplen 2 spacing 1.1 font \",10\"\n";
    else
      out << "set key " << panel.legend << " box opaque samplen 2 font \",10\"\n";
    if (panel.log_x) out << "set logscale x\n";
    if (panel.log_y) out << "set logscale y\n";
    out << "set xrange " << range(panel.x_min, panel.x_max) << "\n";
    out << "set yrange " << range(panel.y_min, panel.y_max) << "\n";
    std::vector<std::string> parts;
    int k = 0;
    for (const auto& s : panel.series) {
      const std::string data = "$d" + std::to_string(block++);
      const std::string color = kColors[k % kNumColors];
      const int dash = 1 + (k / kNumColors);
      ++k;
      if (!s.low.empty())
        parts.push_back(data + " using 1:3:4 with filledcurves lc rgb \"" + color +
                        "\" notitle");
      const bool few = s.x.size() <= 25;
      parts.push_back(data + " using 1:2 with " + (few ? "linespoints pt 7 ps 0.8" : "lines") +
                      " lw 1.5 dt " + std::to_string(dash) + " lc rgb \"" + color + "\" title " +
                      quoted(s.label));
    }
    if (parts.empty()) {
      // gnuplot needs something to plot: an empty panel says so.
      out << "unset logscale\nset label 1 \"no data\" at graph 0.5, 0.5 center\nunset key\n"
             "plot [0:1] [0:1] NaN notitle\n";
      continue;
    }
    out << "plot ";
    for (size_t i = 0; i < parts.size(); ++i) out << (i ? ", \\\n     " : "") << parts[i];
    out << "\n";
  }
  out << "unset multiplot\nset output\n";
  return out.str();
}

void write_png(const Figure& figure, const std::string& png_path) {
  if (!plotting_available())
    throw PlotUnavailable(
        "plots skipped: gnuplot with PNG output was not found (Debian: apt-get install "
        "gnuplot-nox)");
  const auto slash = png_path.rfind('/');
  const std::string folder = slash == std::string::npos ? "." : png_path.substr(0, slash);
  const std::string base = slash == std::string::npos ? png_path : png_path.substr(slash + 1);
  // Both temp files are removed on every path out of here but success's rename.
  struct TempFiles {
    std::string png, script;
    ~TempFiles() {
      if (!png.empty()) unlink(png.c_str());
      if (!script.empty()) unlink(script.c_str());
    }
  } temp;
  auto make_temp = [&](const std::string& pattern) {
    std::string path = folder + "/." + base + pattern;
    const int fd = mkstemp(path.data());
    check(fd >= 0, "cannot create a temp file in " + folder + ": " + std::strerror(errno));
    return std::make_pair(path, fd);
  };
  auto [png, png_fd] = make_temp(".tmp.XXXXXX");
  temp.png = png;
  fchmod(png_fd, 0644);  // mkstemp's 0600 would make the renamed image private
  close(png_fd);
  const std::string script = gnuplot_script(figure, temp.png);  // may throw: no fd open yet
  auto [script_path, script_fd] = make_temp(".gp.tmp.XXXXXX");
  temp.script = script_path;
  const bool written = ::write(script_fd, script.data(), script.size()) ==
                       static_cast<ssize_t>(script.size());
  close(script_fd);
  check(written, "cannot write a temp file in " + folder + ": " + std::strerror(errno));
  std::string output;
  const int status = run_gnuplot({temp.script}, &output);
  check(status == 0, "plot " + png_path + ": gnuplot failed (status " + std::to_string(status) +
                         "): " + output);
  check(std::rename(temp.png.c_str(), png_path.c_str()) == 0,
        "cannot write " + png_path + ": " + std::strerror(errno));
  temp.png.clear();
}

}  // namespace focaldet::report
