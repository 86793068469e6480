#include "train/metrics_log.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"

namespace focaldet::train {

void LogWindow::add(const StepStats& s) {
  ++steps_;
  images_ += s.images;
  loss_ += s.loss;
  loss_cls_ += s.loss_cls;
  loss_box_ += s.loss_box;
  pos_ += static_cast<double>(s.breakdown.num_pos);
  neg_hard_ += static_cast<double>(s.breakdown.num_neg_hard);
  neg_easy_ += static_cast<double>(s.breakdown.num_neg_easy);
  loss_pos_ += s.breakdown.loss_pos;
  loss_neg_hard_ += s.breakdown.loss_neg_hard;
  loss_neg_easy_ += s.breakdown.loss_neg_easy;
  seconds_ += s.step_seconds;
  data_seconds_ += s.data_seconds;
}

std::vector<double> LogWindow::state() const {
  return {static_cast<double>(steps_), static_cast<double>(images_), loss_, loss_cls_, loss_box_,
          pos_, neg_hard_, neg_easy_, loss_pos_, loss_neg_hard_, loss_neg_easy_, seconds_,
          data_seconds_};
}

void LogWindow::restore(const std::vector<double>& s) {
  clear();
  if (s.empty()) return;
  check(s.size() == 13, "log window: expected 13 sums, got " + std::to_string(s.size()));
  steps_ = static_cast<int64_t>(s[0]);
  images_ = static_cast<int64_t>(s[1]);
  loss_ = s[2];
  loss_cls_ = s[3];
  loss_box_ = s[4];
  pos_ = s[5];
  neg_hard_ = s[6];
  neg_easy_ = s[7];
  loss_pos_ = s[8];
  loss_neg_hard_ = s[9];
  loss_neg_easy_ = s[10];
  seconds_ = s[11];
  data_seconds_ = s[12];
}

LogSummary LogWindow::summary(int64_t iter, int64_t epoch, double lr, double time) const {
  LogSummary s;
  s.iter = iter;
  s.epoch = epoch;
  s.lr = lr;
  s.time = time;
  s.peak_mem_mb = peak_memory_mb();
  if (steps_ == 0) return s;
  const double n = static_cast<double>(steps_);
  s.loss = loss_ / n;
  s.loss_cls = loss_cls_ / n;
  s.loss_box = loss_box_ / n;
  s.num_pos = pos_ / n;
  s.num_neg_hard = neg_hard_ / n;
  s.num_neg_easy = neg_easy_ / n;
  s.loss_cls_pos = loss_pos_ / n;
  s.loss_cls_neg_hard = loss_neg_hard_ / n;
  s.loss_cls_neg_easy = loss_neg_easy_ / n;
  // Shares of the window's summed losses (a ratio of sums, not a mean of per-step ratios).
  const double cls_parts = loss_pos_ + loss_neg_hard_ + loss_neg_easy_;
  s.easy_neg_share = cls_parts > 0 ? loss_neg_easy_ / cls_parts : 0.0;
  s.easy_neg_share_total = loss_ > 0 ? loss_neg_easy_ / loss_ : 0.0;
  s.img_per_s = seconds_ > 0 ? static_cast<double>(images_) / seconds_ : 0.0;
  s.images = static_cast<double>(images_) / n;
  s.data_time = data_seconds_ / n;
  return s;
}

std::string to_json(const LogSummary& s) {
  nlohmann::ordered_json j;
  j["iter"] = s.iter;
  j["epoch"] = s.epoch;
  j["lr"] = s.lr;
  j["loss"] = s.loss;
  j["loss_cls"] = s.loss_cls;
  j["loss_box"] = s.loss_box;
  j["num_pos"] = s.num_pos;
  j["num_neg_easy"] = s.num_neg_easy;
  j["num_neg_hard"] = s.num_neg_hard;
  j["images"] = s.images;
  j["loss_cls_pos"] = s.loss_cls_pos;
  j["loss_cls_neg_hard"] = s.loss_cls_neg_hard;
  j["loss_cls_neg_easy"] = s.loss_cls_neg_easy;
  j["easy_neg_share"] = s.easy_neg_share;
  j["easy_neg_share_total"] = s.easy_neg_share_total;
  j["img_per_s"] = s.img_per_s;
  j["data_time"] = s.data_time;
  j["peak_mem_mb"] = s.peak_mem_mb;
  j["time"] = s.time;
  return j.dump();
}

double peak_memory_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

void append_line(const std::string& path, const std::string& line) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(path + ": cannot open for appending: " + std::strerror(errno));
  const std::string data = line + "\n";
  const ssize_t written = ::write(fd, data.data(), data.size());
  const int write_errno = errno;
  const bool synced = written == static_cast<ssize_t>(data.size()) && ::fsync(fd) == 0;
  const int sync_errno = errno;
  ::close(fd);
  if (written != static_cast<ssize_t>(data.size())) {
    throw Error(path + ": cannot append: " +
                (written < 0 ? std::strerror(write_errno) : "short write (disk full?)"));
  }
  if (!synced) throw Error(path + ": cannot sync: " + std::strerror(sync_errno));
}

void truncate_jsonl(const std::string& path, int64_t max_iter) {
  std::ifstream in(path);
  if (!in.good()) return;
  std::string kept, line;
  while (std::getline(in, line)) {
    if (in.eof()) break;  // no newline after it: a line torn by a kill
    const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("iter") || !j["iter"].is_number_integer()) continue;
    if (j["iter"].get<int64_t>() <= max_iter) kept += line + "\n";
  }
  write_file_atomic(path, kept);
}

}  // namespace focaldet::train
