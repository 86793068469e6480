#include "train/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <fstream>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"

namespace focaldet::train {
namespace {

// c10::Error messages carry a C++ stack trace after the first line; users need the first line.
std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

torch::Tensor scalar(double v) { return torch::tensor(v, torch::kFloat64); }
torch::Tensor scalar(int64_t v) { return torch::tensor(v, torch::kInt64); }

template <typename T>
T read_scalar(torch::serialize::InputArchive& archive, const char* key) {
  torch::Tensor t;
  archive.read(key, t);
  return t.item<T>();
}

// Every parameter's and buffer's shape, by name.
std::vector<std::pair<std::string, std::vector<int64_t>>> shapes_of(const torch::nn::Module& m) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> shapes;
  for (const auto& p : m.named_parameters()) shapes.emplace_back(p.key(), p.value().sizes().vec());
  for (const auto& b : m.named_buffers()) shapes.emplace_back(b.key(), b.value().sizes().vec());
  return shapes;
}

std::string shape_text(const std::vector<int64_t>& sizes) {
  std::string text = "[";
  for (size_t i = 0; i < sizes.size(); ++i) text += (i ? ", " : "") + std::to_string(sizes[i]);
  return text + "]";
}

}  // namespace

void save_checkpoint(const std::string& path, const torch::nn::Module& model,
                     const torch::optim::Optimizer* optimizer, const TrainState& state) {
  torch::serialize::OutputArchive archive;
  torch::serialize::OutputArchive model_archive;
  model.save(model_archive);
  archive.write("model", model_archive);
  if (optimizer != nullptr) {
    torch::serialize::OutputArchive optimizer_archive;
    optimizer->save(optimizer_archive);
    archive.write("optimizer", optimizer_archive);
  }
  archive.write("iteration", scalar(state.iteration));
  archive.write("epoch", scalar(state.epoch));
  archive.write("batch_in_epoch", scalar(state.batch_in_epoch));
  archive.write("elapsed_seconds", scalar(state.elapsed_seconds));
  archive.write("normalizer", scalar(state.normalizer));
  archive.write("best_ap", scalar(state.best_ap));
  archive.write("best_iteration", scalar(state.best_iteration));
  archive.write("evaluated_iteration", scalar(state.evaluated_iteration));
  archive.write("log_window",
                torch::tensor(state.log_window.empty() ? std::vector<double>{0.0} : state.log_window,
                              torch::kFloat64)
                    .slice(0, 0, static_cast<int64_t>(state.log_window.size())));
  archive.write("rng", at::detail::getDefaultCPUGenerator().get_state());
  std::ostringstream bytes;
  archive.save_to(bytes);
  write_file_atomic(path, bytes.str());
}

TrainState load_checkpoint(const std::string& path, torch::nn::Module& model,
                           torch::optim::Optimizer* optimizer) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), path + ": cannot open checkpoint");
  std::stringstream bytes;
  bytes << in.rdbuf();
  TrainState s;
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(bytes);
    torch::serialize::InputArchive model_archive;
    archive.read("model", model_archive);
    // Module::load replaces each tensor, shape and all: a checkpoint of another architecture
    // would load "fine" and fail later, or not at all. Compare every shape with the model's.
    const auto expected = shapes_of(model);
    model.load(model_archive);
    const auto got = shapes_of(model);
    for (size_t i = 0; i < expected.size() && i < got.size(); ++i)
      check(expected[i].second == got[i].second,
            path + ": '" + expected[i].first + "' has shape " + shape_text(got[i].second) +
                " in the checkpoint but " + shape_text(expected[i].second) +
                " in the model this config builds (was it saved with other model.* settings?)");
    if (optimizer != nullptr) {
      torch::serialize::InputArchive optimizer_archive;
      archive.read("optimizer", optimizer_archive);
      optimizer->load(optimizer_archive);
    }
    s.iteration = read_scalar<int64_t>(archive, "iteration");
    s.epoch = read_scalar<int64_t>(archive, "epoch");
    s.batch_in_epoch = read_scalar<int64_t>(archive, "batch_in_epoch");
    s.elapsed_seconds = read_scalar<double>(archive, "elapsed_seconds");
    s.normalizer = read_scalar<double>(archive, "normalizer");
    s.best_ap = read_scalar<double>(archive, "best_ap");
    s.best_iteration = read_scalar<int64_t>(archive, "best_iteration");
    // Checkpoints written before these two were added (commit 328b3bc) lack them: such a run
    // resumes with no evaluation noted and a fresh log window, and still evaluates and loads.
    torch::Tensor evaluated, window;
    if (archive.try_read("evaluated_iteration", evaluated))
      s.evaluated_iteration = evaluated.item<int64_t>();
    if (archive.try_read("log_window", window)) {
      window = window.contiguous();
      s.log_window.assign(window.data_ptr<double>(), window.data_ptr<double>() + window.numel());
    }
    torch::Tensor rng;
    archive.read("rng", rng);
    at::Generator generator = at::detail::getDefaultCPUGenerator();
    generator.set_state(rng);
  } catch (const c10::Error& e) {
    throw Error(path + ": not a usable focaldet checkpoint for this config (truncated, corrupt "
                       "or from another model): " + first_line(e.what_without_backtrace()));
  }
  return s;
}

}  // namespace focaldet::train
