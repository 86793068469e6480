#pragma once
// Reading, validating and writing focaldet configs. Errors are focaldet::Error with the file
// and line ("configs/x.yaml:12: unknown key 'gama' in 'loss' (did you mean 'gamma'?)").
#include <string>
#include <vector>

#include "config/config.h"

namespace focaldet::config {

// Reads `path` (YAML). A top-level `base: other.yaml` (relative to this file) is read first and
// this file's keys override it, recursively (a cycle is an error). `overrides` are
// "key.path=value" strings (`--set`), applied last and validated the same way (value parsed as
// YAML). Relative paths (data.image_root/train/val/test, model.weights, run.output_dir) resolve
// against the folder of the file that set them (overrides: the current folder). Then
// validate() runs.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});

// The same from YAML text; `name` stands for the file in messages, `folder` resolves paths.
Config parse_config(const std::string& yaml_text, const std::string& name,
                    const std::string& folder, const std::vector<std::string>& overrides = {});

// Range and consistency checks (negative lr, gamma < 0, alpha outside [0, 1] and not -1, no or
// several budgets, missing train json or image folder, ...); errors name the key and, when
// `config.origins` knows it, its file:line.
void validate(const Config& config);

// Every key with its value, as YAML that load_config reads back to the same Config (the run
// directory's config.yaml: exactly what ran).
std::string to_yaml(const Config& config);

// "file:line" of a key when known, else the key itself; for messages made outside config/.
std::string where(const Config& config, const std::string& key);

}  // namespace focaldet::config
