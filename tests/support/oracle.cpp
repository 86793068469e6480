#include "support/oracle.h"

#include <torch/serialize.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <sstream>
#include <stdexcept>

namespace focaldet::test {
namespace {

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

}  // namespace

std::string source_path(const std::string& relative) {
  return std::string(FOCALDET_SOURCE_DIR) + "/" + relative;
}

std::string make_temp_dir(const std::string& prefix) {
  std::string templ = (std::filesystem::temp_directory_path() / (prefix + "XXXXXX")).string();
  if (mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + templ);
  return templ;
}

std::string python_interpreter() {
  if (const char* env = std::getenv("FOCALDET_PYTHON")) return env;
  return "/usr/bin/python3";
}

namespace {

std::string check_python_modules(const std::vector<std::string>& modules) {
  std::string log;
  std::string code = "import importlib,sys\nmissing=[]\n";
  for (const auto& m : modules) {
    code += "try:\n importlib.import_module('" + m + "')\nexcept Exception as e:\n missing.append('" +
            m + "')\n";
  }
  code += "print(' '.join(missing))\nsys.exit(1 if missing else 0)\n";
  const std::string cmd = shell_quote(python_interpreter()) + " -c " + shell_quote(code) + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) return "cannot start " + python_interpreter();
  std::array<char, 512> buf{};
  while (fgets(buf.data(), buf.size(), pipe) != nullptr) log += buf.data();
  const int status = pclose(pipe);
  if (status == 0) return "";
  return python_interpreter() + " cannot import: " + log +
         " (install with: apt-get install python3-torch python3-torchvision, as scripts/setup.sh "
         "does)";
}

}  // namespace

std::string python_missing(const std::vector<std::string>& modules) {
  static std::mutex mutex;
  static std::map<std::vector<std::string>, std::string> cache;
  const std::lock_guard<std::mutex> lock(mutex);
  const auto found = cache.find(modules);
  if (found != cache.end()) return found->second;
  return cache.emplace(modules, check_python_modules(modules)).first->second;
}

int run_python(const std::string& script, const std::vector<std::string>& args, std::string* log) {
  std::string cmd = shell_quote(python_interpreter()) + " " + shell_quote(script);
  for (const auto& a : args) cmd += " " + shell_quote(a);
  cmd += " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) return -1;
  std::array<char, 4096> buf{};
  std::string out;
  while (fgets(buf.data(), buf.size(), pipe) != nullptr) out += buf.data();
  const int status = pclose(pipe);
  if (log != nullptr) *log = out;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void save_tensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& [name, t] : tensors) dict.insert(name, t.contiguous());
  const std::vector<char> bytes = torch::pickle_save(c10::IValue(dict));
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::map<std::string, torch::Tensor> load_tensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  c10::IValue value;
  try {
    value = torch::pickle_load(bytes);
  } catch (const c10::Error& e) {
    const std::string what = e.what_without_backtrace();
    if (what.find("Unknown opcode") != std::string::npos && what.find("0x73") != std::string::npos) {
      throw std::runtime_error(
          "cannot load " + path + ": " + what +
          " (LibTorch 1.13's pickle_load lacks SETITEM, which torch.save uses for a dict with a "
          "single entry: save at least two entries, as tests/support/oracle_io.py does)");
    }
    throw;
  }
  std::map<std::string, torch::Tensor> out;
  for (const auto& item : value.toGenericDict()) {
    out.emplace(item.key().toStringRef(), item.value().toTensor());
  }
  return out;
}

}  // namespace focaldet::test
