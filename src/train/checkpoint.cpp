#include "train/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <istream>
#include <set>
#include <sstream>
#include <streambuf>

#include "common/atomic_file.h"
#include "common/error.h"

namespace focaldet::train {
namespace {

// c10::Error messages carry a C++ stack trace after the first line; users need the first line.
// (TorchScript's errors start with a newline: the first line with text.)
std::string first_line(const std::string& text) {
  const size_t begin = std::min(text.find_first_not_of('\n'), text.size());
  return text.substr(begin, text.find('\n', begin) - begin);
}

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

// --- The archive's own integrity, checked before LibTorch interprets it ---
// A checkpoint is a zip (LibTorch's archive format) and every zip record carries a CRC-32 of its
// contents. Debian's LibTorch 1.13 reads the zip without checking them, and its TorchScript
// importer crashes (SEGV, not an exception) on some corrupt code records, while a flipped byte
// in a tensor's record loads as silently wrong weights (docs/reliability.md, fuzzing). So every
// record is read once through LibTorch's own zip reader and compared with the CRC-32 and size
// in the zip's central directory; only then is the archive interpreted. Every checkpoint ever
// written has these CRCs (LibTorch's writer makes them), so old checkpoints still load.

// CRC-32 as zip computes it (reflected polynomial 0xEDB88320), eight bytes a step
// ("slicing-by-8": a checkpoint of the BCCD model is 160 MB).
uint32_t crc32(const uint8_t* p, size_t n) {
  using Tables = std::array<std::array<uint32_t, 256>, 8>;
  static const Tables t = [] {
    Tables tables{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      tables[0][i] = c;
    }
    for (int k = 1; k < 8; ++k) {
      for (uint32_t i = 0; i < 256; ++i) {
        tables[k][i] = (tables[k - 1][i] >> 8) ^ tables[0][tables[k - 1][i] & 0xFFu];
      }
    }
    return tables;
  }();
  const auto word = [](const uint8_t* q) {
    return uint32_t{q[0]} | uint32_t{q[1]} << 8 | uint32_t{q[2]} << 16 | uint32_t{q[3]} << 24;
  };
  uint32_t c = 0xFFFFFFFFu;
  for (; n >= 8; p += 8, n -= 8) {
    const uint32_t lo = c ^ word(p), hi = word(p + 4);
    c = t[7][lo & 0xFFu] ^ t[6][(lo >> 8) & 0xFFu] ^ t[5][(lo >> 16) & 0xFFu] ^ t[4][lo >> 24] ^
        t[3][hi & 0xFFu] ^ t[2][(hi >> 8) & 0xFFu] ^ t[1][(hi >> 16) & 0xFFu] ^ t[0][hi >> 24];
  }
  for (; n > 0; ++p, --n) c = t[0][(c ^ *p) & 0xFFu] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

struct ZipRecord {
  std::string name;  // as in the zip: "archive/data.pkl"
  uint32_t crc = 0;
  uint64_t size = 0;   // uncompressed
  bool stored = true;  // else deflated
};

// The central directory of the zip `z`: each record's name, CRC-32 and size, in zip order.
// Throws Error naming `path` for anything that is not a well-formed zip of LibTorch's kind.
std::vector<ZipRecord> zip_records(const std::string& z, const std::string& path) {
  const auto fail = [&path](const std::string& why) {
    throw Error(path + ": not a usable focaldet checkpoint (truncated, corrupt or not a " +
                "checkpoint): " + why);
  };
  const auto le = [&](uint64_t offset, int bytes) {  // little-endian unsigned, bounds-checked
    if (offset > z.size() || static_cast<uint64_t>(bytes) > z.size() - offset) {
      fail("the zip directory points past the end of the file");
    }
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(z[offset + i]);
    return v;
  };
  // The end record: the last "PK\5\6" within its 22 bytes plus a comment (< 64 KiB) of the end.
  if (z.size() < 22) fail("too short for a zip archive");
  uint64_t eocd = z.size() - 22;
  while (le(eocd, 4) != 0x06054b50u) {
    if (eocd == 0 || z.size() - eocd >= 22 + 65535) fail("no zip end record");
    --eocd;
  }
  if (eocd + 22 + le(eocd + 20, 2) != z.size()) fail("bytes after the zip end record");
  uint64_t count = le(eocd + 10, 2), cd_size = le(eocd + 12, 4), cd_offset = le(eocd + 16, 4);
  // Zip64 (LibTorch always writes it): its locator sits right before the end record, and then
  // its values are the ones that count (as in miniz, LibTorch's zip reader).
  if (eocd >= 20 && le(eocd - 20, 4) == 0x07064b50u) {
    const uint64_t z64 = le(eocd - 20 + 8, 8);
    if (le(z64, 4) != 0x06064b50u) fail("bad zip64 end record");
    count = le(z64 + 32, 8), cd_size = le(z64 + 40, 8), cd_offset = le(z64 + 48, 8);
  }
  if (cd_offset > z.size() || cd_size > z.size() - cd_offset) {
    fail("the zip directory lies outside the file");
  }
  std::vector<ZipRecord> records;
  std::set<std::string> lower_names;  // miniz looks names up ignoring case
  uint64_t at = cd_offset;
  const uint64_t cd_end = cd_offset + cd_size;
  for (uint64_t k = 0; k < count; ++k) {
    if (at > cd_end || cd_end - at < 46 || le(at, 4) != 0x02014b50u) {
      fail("bad zip directory entry " + std::to_string(k));
    }
    const uint64_t flags = le(at + 8, 2), method = le(at + 10, 2);
    ZipRecord r;
    r.crc = static_cast<uint32_t>(le(at + 16, 4));
    uint64_t compressed = le(at + 20, 4);
    r.size = le(at + 24, 4);
    uint64_t local = le(at + 42, 4);
    const uint64_t name_len = le(at + 28, 2), extra_len = le(at + 30, 2);
    const uint64_t entry_len = 46 + name_len + extra_len + le(at + 32, 2);
    if (cd_end - at < entry_len) fail("bad zip directory entry " + std::to_string(k));
    r.name = z.substr(at + 46, name_len);
    // Zip64 extended information (id 1): the values that are 0xFFFFFFFF above, in this order.
    for (uint64_t e = at + 46 + name_len; e + 4 <= at + 46 + name_len + extra_len;) {
      const uint64_t id = le(e, 2), len = le(e + 2, 2);
      if (id == 1) {
        uint64_t p = e + 4;
        if (r.size == 0xFFFFFFFFu) r.size = le(p, 8), p += 8;
        if (compressed == 0xFFFFFFFFu) compressed = le(p, 8), p += 8;
        if (local == 0xFFFFFFFFu) local = le(p, 8), p += 8;
      }
      e += 4 + len;
    }
    // Names are not covered by the CRCs: the record's local header repeats its name (LibTorch's
    // writer writes both the same), which catches a corrupt name in either place.
    if (le(local, 4) != 0x04034b50u || le(local + 26, 2) != name_len ||
        z.size() - local < 30 + name_len || z.compare(local + 30, name_len, r.name) != 0) {
      fail("record '" + r.name + "' does not match its local header");
    }
    if ((flags & 1) != 0) fail("record '" + r.name + "' is encrypted");
    if (method != 0 && method != 8) fail("record '" + r.name + "' has an unknown compression");
    r.stored = method == 0;
    // Bound what reading a record may allocate: a stored record is as large as in the file,
    // deflate expands at most 1032:1.
    if (compressed > z.size() || (r.stored && r.size != compressed) ||
        (!r.stored && r.size > compressed * 1032 + 64)) {
      fail("record '" + r.name + "' has an impossible size");
    }
    std::string lower = r.name;
    for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (!lower_names.insert(lower).second) fail("record '" + r.name + "' appears twice");
    records.push_back(std::move(r));
    at += entry_len;
  }
  return records;
}

// The whole file, read once (LibTorch's reader seeks back and forth in it).
std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), path + ": cannot open checkpoint");
  std::string bytes;
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (!ec) bytes.reserve(size);
  std::array<char, 1 << 16> chunk;
  while (in.read(chunk.data(), chunk.size()) || in.gcount() > 0) {
    bytes.append(chunk.data(), static_cast<size_t>(in.gcount()));
  }
  return bytes;
}

// A seekable, read-only stream buffer over bytes in memory: the checks and LibTorch read the
// one copy of the file.
class MemoryBuffer : public std::streambuf {
 public:
  explicit MemoryBuffer(const std::string& bytes) {
    char* begin = const_cast<char*>(bytes.data());  // never written: no put area, no putback
    setg(begin, begin, begin + bytes.size());
  }

 protected:
  pos_type seekoff(off_type offset, std::ios_base::seekdir dir,
                   std::ios_base::openmode which) override {
    if ((which & std::ios_base::in) == 0) return pos_type(off_type(-1));
    const off_type from = dir == std::ios_base::beg   ? 0
                          : dir == std::ios_base::cur ? gptr() - eback()
                                                      : egptr() - eback();
    if (offset < -from || offset > (egptr() - eback()) - from) return pos_type(off_type(-1));
    setg(eback(), eback() + from + offset, egptr());
    return pos_type(from + offset);
  }
  pos_type seekpos(pos_type position, std::ios_base::openmode which) override {
    return seekoff(off_type(position), std::ios_base::beg, which);
  }
};

// Reads every record of `archive` through LibTorch's zip reader and checks it against the CRC-32
// and size of the central directory. Throws Error naming `path`, or c10::Error from the reader.
void check_records(const std::string& bytes, std::istream& archive, const std::string& path) {
  const std::vector<ZipRecord> records = zip_records(bytes, path);
  caffe2::serialize::PyTorchStreamReader reader(&archive);
  // The reader names records without their folder ("data.pkl" for "archive/data.pkl"), and
  // lists them in zip order.
  const std::vector<std::string> names = reader.getAllRecords();
  const auto fail = [&path](const std::string& why) {
    throw Error(path + ": not a usable focaldet checkpoint (truncated, corrupt or not a " +
                "checkpoint): " + why);
  };
  if (names.size() != records.size()) fail("the zip directory does not read consistently");
  for (size_t i = 0; i < names.size(); ++i) {
    const ZipRecord& r = records[i];
    if (r.name.size() < names[i].size() ||
        r.name.compare(r.name.size() - names[i].size(), names[i].size(), names[i]) != 0) {
      fail("the zip directory does not read consistently");
    }
    uint32_t crc = 0;
    if (r.stored) {
      // Where the reader takes the record's bytes from, read in place (tensors: most of the
      // file) rather than copied out.
      const size_t offset = reader.getRecordOffset(names[i]);
      if (offset > bytes.size() || r.size > bytes.size() - offset) {
        fail("record '" + r.name + "' lies outside the file");
      }
      crc = crc32(reinterpret_cast<const uint8_t*>(bytes.data()) + offset, r.size);
    } else {
      const auto [data, size] = reader.getRecord(names[i]);
      if (size != r.size) fail("record '" + r.name + "' fails its CRC-32 check");
      crc = crc32(static_cast<const uint8_t*>(data.get()), size);
    }
    if (crc != r.crc) fail("record '" + r.name + "' fails its CRC-32 check");
  }
}

// --- Devices: a checkpoint holds CPU tensors and loads onto the model's device ---

// Where the model lives: its first parameter's (or buffer's) device; the CPU for an empty one.
torch::Device device_of(const torch::nn::Module& model) {
  for (const auto& p : model.parameters()) return p.device();
  for (const auto& b : model.buffers()) return b.device();
  return torch::kCPU;
}

torch::Tensor on_cpu(const torch::Tensor& t) {
  return t.defined() ? t.detach().to(torch::kCPU).requires_grad_(t.requires_grad()) : t;
}

// Module::save with every tensor copied to the CPU (itself when it is there), in Module::save's
// order and layout: a checkpoint written on a GPU loads on any machine, and one written on the
// CPU is what Module::save writes.
void save_module(const torch::nn::Module& module, torch::serialize::OutputArchive& archive) {
  for (const auto& p : module.named_parameters(/*recurse=*/false)) {
    archive.write(p.key(), on_cpu(p.value()));
  }
  for (const auto& b : module.named_buffers(/*recurse=*/false)) {
    archive.write(b.key(), on_cpu(b.value()), /*is_buffer=*/true);
  }
  for (const auto& child : module.named_children()) {
    if (!child.value()->is_serializable()) continue;
    torch::serialize::OutputArchive child_archive(archive.compilation_unit());
    save_module(*child.value(), child_archive);
    archive.write(child.key(), child_archive);
  }
}

// Optimizer::save with the state's tensors (SGD's momentum buffers, AdamW's moments) copied to
// the CPU: copies are swapped in for the call and the optimizer's own state back after it.
void save_optimizer(const torch::optim::Optimizer& optimizer,
                    torch::serialize::OutputArchive& archive) {
  using State = std::remove_reference_t<decltype(std::declval<torch::optim::Optimizer&>().state())>;
  State copies;
  for (const auto& [key, state] : optimizer.state()) {
    std::unique_ptr<torch::optim::OptimizerParamState> copy = state->clone();
    if (auto* sgd = dynamic_cast<torch::optim::SGDParamState*>(copy.get())) {
      sgd->momentum_buffer(on_cpu(sgd->momentum_buffer()));
    } else if (auto* adamw = dynamic_cast<torch::optim::AdamWParamState*>(copy.get())) {
      adamw->exp_avg(on_cpu(adamw->exp_avg()));
      adamw->exp_avg_sq(on_cpu(adamw->exp_avg_sq()));
      adamw->max_exp_avg_sq(on_cpu(adamw->max_exp_avg_sq()));
    } else {
      throw Error(
          "checkpoint: cannot copy the state of this optimizer to the CPU (only sgd and "
          "adamw are known)");
    }
    copies.emplace(key, std::move(copy));
  }
  // The state is the optimizer's, not ours to change: it is swapped back before returning.
  State& state = const_cast<torch::optim::Optimizer&>(optimizer).state();
  state.swap(copies);
  try {
    optimizer.save(archive);
  } catch (...) {
    state.swap(copies);
    throw;
  }
  state.swap(copies);
}

}  // namespace

void save_checkpoint(const std::string& path, const torch::nn::Module& model,
                     const torch::optim::Optimizer* optimizer, const TrainState& state,
                     const torch::nn::Module* averaged) {
  torch::serialize::OutputArchive archive;
  torch::serialize::OutputArchive model_archive;
  save_module(model, model_archive);
  archive.write("model", model_archive);
  if (averaged != nullptr) {
    torch::serialize::OutputArchive averaged_archive;
    save_module(*averaged, averaged_archive);
    archive.write("model_ema", averaged_archive);
  }
  if (optimizer != nullptr) {
    torch::serialize::OutputArchive optimizer_archive;
    save_optimizer(*optimizer, optimizer_archive);
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
  archive.write("world_size", scalar(state.world_size));
  archive.write("log_window",
                torch::tensor(state.log_window.empty() ? std::vector<double>{0.0} : state.log_window,
                              torch::kFloat64)
                    .slice(0, 0, static_cast<int64_t>(state.log_window.size())));
  archive.write("rng", at::detail::getDefaultCPUGenerator().get_state());
  // A CUDA model's device has its own generator (nothing in training draws from it today; kept
  // so that a resume restores every random state there is).
  const torch::Device device = device_of(model);
  if (device.is_cuda()) {
    archive.write("rng_cuda", at::globalContext().defaultGenerator(device).get_state());
  }
  std::ostringstream bytes;
  archive.save_to(bytes);
  write_file_atomic(path, bytes.str());
}

namespace {

// Reads the module archive `key` into `module`, every tensor's shape checked against the
// module's own (Module::load replaces each tensor, shape and all: a checkpoint of another
// architecture would load "fine" and fail later, or not at all).
void load_module(torch::serialize::InputArchive& archive, const std::string& key,
                 torch::nn::Module& module, const std::string& path) {
  torch::serialize::InputArchive module_archive;
  archive.read(key, module_archive);
  const auto expected = shapes_of(module);
  module.load(module_archive);
  const auto got = shapes_of(module);
  for (size_t i = 0; i < expected.size() && i < got.size(); ++i)
    check(expected[i].second == got[i].second,
          path + ": '" + expected[i].first + "' has shape " + shape_text(got[i].second) +
              " in the checkpoint but " + shape_text(expected[i].second) +
              " in the model this config builds (was it saved with other model.* settings?)");
}

// Both loads: `averaged` non-null takes the EMA weights (if any) there; `prefer_average` puts
// them into `model` instead of the trained ones.
TrainState load(const std::string& path, torch::nn::Module& model,
                torch::optim::Optimizer* optimizer, torch::nn::Module* averaged,
                bool prefer_average) {
  const std::string bytes = read_file(path);
  TrainState s;
  try {
    MemoryBuffer buffer(bytes);
    std::istream stream(&buffer);
    check_records(bytes, stream, path);
    stream.clear();
    stream.seekg(0);
    // Every tensor onto the model's device (the CPU tensors a checkpoint holds, or a GPU's from
    // elsewhere): Module::load then replaces each parameter's data in place.
    const torch::Device device = device_of(model);
    torch::serialize::InputArchive archive;
    archive.load_from(stream, device);
    // Written by runs with train.ema_decay > 0 (and none before it existed).
    torch::serialize::InputArchive probe;
    s.averaged = archive.try_read("model_ema", probe);
    load_module(archive, s.averaged && prefer_average ? "model_ema" : "model", model, path);
    if (averaged != nullptr && s.averaged) load_module(archive, "model_ema", *averaged, path);
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
    torch::Tensor world_size;  // written since data-parallel training; before: one process
    if (archive.try_read("world_size", world_size)) s.world_size = world_size.item<int64_t>();
    check(s.world_size >= 1 && s.batch_in_epoch >= 0 && s.iteration >= 0,
          path + ": not a usable focaldet checkpoint: its training position is invalid");
    if (archive.try_read("log_window", window)) {
      window = window.to(torch::kCPU).contiguous();
      s.log_window.assign(window.data_ptr<double>(), window.data_ptr<double>() + window.numel());
    }
    torch::Tensor rng;
    archive.read("rng", rng);
    at::Generator generator = at::detail::getDefaultCPUGenerator();
    generator.set_state(rng.to(torch::kCPU));
    torch::Tensor rng_cuda;  // written from a CUDA model; a CPU run has no use for it
    if (device.is_cuda() && archive.try_read("rng_cuda", rng_cuda)) {
      at::Generator cuda_generator = at::globalContext().defaultGenerator(device);
      cuda_generator.set_state(rng_cuda.to(torch::kCPU));
    }
  } catch (const Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw Error(path + ": not a usable focaldet checkpoint for this config (truncated, corrupt "
                       "or from another model): " + first_line(e.what_without_backtrace()));
  } catch (const std::exception& e) {
    // TorchScript's importer reports with its own type (torch::jit::ErrorReport), and the
    // standard library with its own: a file that makes LibTorch throw is no checkpoint either.
    throw Error(path + ": not a usable focaldet checkpoint (truncated, corrupt or not a " +
                "checkpoint): " + first_line(e.what()));
  }
  return s;
}

}  // namespace

TrainState load_checkpoint(const std::string& path, torch::nn::Module& model,
                           torch::optim::Optimizer* optimizer, torch::nn::Module* averaged) {
  return load(path, model, optimizer, averaged, /*prefer_average=*/false);
}

TrainState load_inference_weights(const std::string& path, torch::nn::Module& model) {
  return load(path, model, nullptr, nullptr, /*prefer_average=*/true);
}

}  // namespace focaldet::train
