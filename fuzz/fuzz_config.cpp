// Fuzz target `config`: YAML configs (config::parse_config, the body of load_config), with
// `base:` inheritance and --set overrides: every input line that starts with "#set " (a YAML
// comment) is also passed as an override, e.g. "#set loss.gamma=3". The config "lives" in
// SCRATCH/cfg/configs/ beside a copy of configs/bccd_focal.yaml, with ../base.yaml (the config
// tests' fixture) and stub data files, so that the repository's configs validate as they do in
// place. Checks: a config that loads survives to_yaml -> parse_config unchanged (config_io.h:
// "YAML that load_config reads back to the same Config"), with its paths made absolute first
// as `focaldet train` does before it writes a run's config.yaml.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "config/config_io.h"
#include "fuzz_util.h"

namespace focaldet::fuzz {
namespace {

std::string read_source_file(const std::string& relative) {
  const fs::path path = fs::path(FOCALDET_SOURCE_DIR) / relative;
  std::ifstream in(path, std::ios::binary);
  FUZZ_CHECK(in.good(), "cannot read " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// SCRATCH/cfg/configs: the folder the fuzzed config is read in.
const fs::path& config_folder() {
  static const fs::path folder = [] {
    const fs::path root = scratch_dir() / "cfg";
    const std::string empty_coco = R"({"images": [], "annotations": [], "categories": []})";
    write_bytes(root / "configs" / "bccd_focal.yaml", read_source_file("configs/bccd_focal.yaml"));
    write_bytes(root / "base.yaml", read_source_file("tests/config/fixtures/base.yaml"));
    write_bytes(root / "data" / "train.json", empty_coco);
    fs::create_directories(root / "data" / "images");
    for (const char* split : {"train", "val", "test", "trainval"}) {
      write_bytes(root / "data" / "bccd" / "coco" / ("instances_" + std::string(split) + ".json"),
                  empty_coco);
    }
    fs::create_directories(root / "data" / "bccd" / "JPEGImages");
    return root / "configs";
  }();
  return folder;
}

std::vector<std::string> overrides_in(std::string_view text) {
  std::vector<std::string> overrides;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(start, end - start);
    if (line.substr(0, 5) == "#set ") overrides.emplace_back(line.substr(5));
    start = end + 1;
  }
  return overrides;
}

// As cli/train_command.cpp's with_absolute_paths: a run's config.yaml holds absolute paths.
config::Config with_absolute_paths(config::Config c) {
  for (std::string* p : {&c.data.image_root, &c.data.train, &c.data.val, &c.data.test,
                         &c.model.weights, &c.run.output_dir}) {
    if (!p->empty()) *p = fs::absolute(*p).lexically_normal().string();
  }
  return c;
}

}  // namespace
}  // namespace focaldet::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  focaldet::fuzz::quiet_logging();
  focaldet::fuzz::config_folder();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace focaldet;
  using namespace focaldet::fuzz;
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::string folder = config_folder().string();

  config::Config c;
  if (!run_reader("parse_config", [&] {
        c = config::parse_config(text, "fuzz.yaml", folder, overrides_in(text));
      })) {
    return 0;
  }
  const config::Config absolute = with_absolute_paths(c);
  std::string yaml;
  FUZZ_CHECK(run_reader("to_yaml", [&] { yaml = config::to_yaml(absolute); }), "to_yaml threw");
  config::Config back;
  std::string error;
  try {
    back = config::parse_config(yaml, "config.yaml", "");
  } catch (const Error& e) {
    error = e.what();
  }
  FUZZ_CHECK(error.empty(), "to_yaml wrote a config that does not load: " + error + "\n" + yaml);
  std::string again;
  FUZZ_CHECK(run_reader("to_yaml", [&] { again = config::to_yaml(back); }), "to_yaml threw");
  FUZZ_CHECK(again == yaml,
             "to_yaml -> parse_config changed the config:\n" + yaml + "\n---\n" + again);
  return 0;
}
