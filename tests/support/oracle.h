#pragma once
// Running independent reference implementations (Debian's python3-torch / python3-torchvision)
// from tests, and exchanging tensors with them through torch.save-compatible files.
#include <torch/types.h>

#include <map>
#include <string>
#include <vector>

namespace focaldet::test {

// Path of a file in the source tree (tests read nothing outside the repository).
std::string source_path(const std::string& relative);

// A fresh empty directory under the system temp dir, removed by the caller if it cares.
std::string make_temp_dir(const std::string& prefix);

// The Python interpreter used for oracles: $FOCALDET_PYTHON, else /usr/bin/python3 (Debian's,
// which is where python3-torch installs; a pyenv python3 earlier on PATH would lack it).
std::string python_interpreter();

// Empty string when `python_interpreter()` can import every module in `modules`; otherwise a
// message that says what is missing and how to install it. Oracle tests FAIL with it: an
// oracle that cannot run must never look like a pass. The answer is cached per process and per
// module list: the check starts an interpreter that imports torchvision (seconds on a loaded
// machine), so a test binary runs it once, however many tests ask.
std::string python_missing(const std::vector<std::string>& modules);

// Runs `python_interpreter() script args...`, returns its exit code; stdout+stderr go to `log`.
int run_python(const std::string& script, const std::vector<std::string>& args, std::string* log);

// Tensor exchange: a dict name -> tensor, readable by torch.load in Python and written by
// torch.save there (use _use_new_zipfile_serialization=True, the default).
//
// LibTorch 1.13 limitation: torch::pickle_load cannot read a torch.save'd dict with only one
// entry (pickle writes it with the SETITEM opcode, which LibTorch's unpickler lacks: "Unknown
// opcode 0x73"); two or more entries use SETITEMS and load fine. The oracle scripts therefore
// always save at least two entries (save() in tests/support/oracle_io.py, which they import);
// load_tensors says so in its error when it meets that opcode.
void save_tensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors);
std::map<std::string, torch::Tensor> load_tensors(const std::string& path);

}  // namespace focaldet::test

// Fails the current test (or the void function it is used in) with the reason when an oracle's
// Python modules are missing; the check runs once per process (see python_missing).
#define FOCALDET_REQUIRE_PYTHON(...)                                                   \
  do {                                                                                 \
    const std::string missing_ = ::focaldet::test::python_missing({__VA_ARGS__});      \
    if (!missing_.empty()) FAIL() << "oracle not run: " << missing_;                   \
  } while (0)
