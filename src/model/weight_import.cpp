#include "model/weight_import.h"

#include <torch/serialize.h>

#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <vector>

#include "common/error.h"

namespace focaldet::model {
namespace {

bool skipped(const std::string& name, const WeightImportOptions& o) {
  for (const auto& prefix : o.skip_prefixes) {
    if (name.rfind(prefix, 0) == 0) return true;
  }
  const std::string tail = "num_batches_tracked";
  return name.size() >= tail.size() &&
         name.compare(name.size() - tail.size(), tail.size(), tail) == 0;
}

std::string shape(const torch::Tensor& t) { return c10::str(t.sizes()); }

}  // namespace

WeightImportReport load_weights(torch::nn::Module& module, const std::string& path,
                                const WeightImportOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("load_weights: cannot open " + path);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  c10::IValue value;
  try {
    value = torch::pickle_load(bytes);
  } catch (const std::exception& e) {
    throw Error("load_weights: " + path +
                " is not a torch.save'd dict of tensors (write it with "
                "scripts/export_torchvision_weights.py): " +
                std::string(e.what()).substr(0, 200));
  }
  if (!value.isGenericDict()) throw Error("load_weights: " + path + " does not hold a dict");
  std::map<std::string, torch::Tensor> file;
  for (const auto& item : value.toGenericDict()) {
    if (!item.key().isString() || !item.value().isTensor()) {
      throw Error("load_weights: " + path + " has a non-tensor entry");
    }
    file.emplace(item.key().toStringRef(), item.value().toTensor());
  }

  std::map<std::string, torch::Tensor> model;
  for (const auto& p : module.named_parameters()) model.emplace(p.key(), p.value());
  for (const auto& b : module.named_buffers()) model.emplace(b.key(), b.value());

  std::vector<std::string> unexpected, mismatched, missing;
  for (const auto& [name, t] : file) {
    if (skipped(name, options)) continue;
    auto it = model.find(name);
    if (it == model.end())
      unexpected.push_back(name + " " + shape(t));
    else if (it->second.sizes() != t.sizes())
      mismatched.push_back(name + ": file " + shape(t) + ", model " + shape(it->second));
  }
  for (const auto& [name, t] : model) {
    if (!skipped(name, options) && file.count(name) == 0) missing.push_back(name + " " + shape(t));
  }
  if (!unexpected.empty() || !mismatched.empty() || (!missing.empty() && !options.allow_missing)) {
    std::ostringstream msg;
    msg << "load_weights: " << path << " does not fit the model";
    auto list = [&](const char* what, const std::vector<std::string>& names) {
      if (names.empty()) return;
      msg << "\n  " << names.size() << " " << what << ":";
      for (size_t i = 0; i < names.size() && i < 30; ++i) msg << "\n    " << names[i];
      if (names.size() > 30) msg << "\n    ... and " << names.size() - 30 << " more";
    };
    list("in the file but not in the model", unexpected);
    list("with different shapes", mismatched);
    if (!options.allow_missing) list("in the model but not in the file", missing);
    throw Error(msg.str());
  }

  WeightImportReport report;
  torch::NoGradGuard no_grad;
  for (const auto& [name, t] : file) {
    if (skipped(name, options)) continue;
    torch::Tensor dst = model.at(name);
    dst.copy_(t.to(dst.device(), dst.scalar_type()));
    ++report.loaded;
  }
  report.missing = static_cast<int64_t>(missing.size());
  return report;
}

}  // namespace focaldet::model
