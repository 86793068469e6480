#pragma once
// Loads a state dict written by scripts/export_torchvision_weights.py (a torch.save'd dict
// name -> tensor) into a module by parameter/buffer name.
#include <torch/nn/module.h>

#include <string>
#include <vector>

namespace focaldet::model {

struct WeightImportOptions {
  // Model entries absent from the file are an error unless this is set (an ImageNet ResNet
  // file has no FPN or head: load it with allow_missing = true).
  bool allow_missing = false;
  // Names starting with one of these are neither loaded nor required: e.g.
  // "head.classification_head.cls_logits." to start from COCO weights with other classes (the
  // class layer keeps its prior-probability init).
  std::vector<std::string> skip_prefixes;
};

struct WeightImportReport {
  int64_t loaded = 0;   // tensors copied
  int64_t missing = 0;  // model entries left at their initial values (allow_missing)
};

// Copies every tensor of the file into the module entry of the same name. File entries with no
// such model entry, and shape mismatches, are an Error listing each (name and both shapes);
// BatchNorm's num_batches_tracked is skipped on either side (frozen BN has none).
WeightImportReport load_weights(torch::nn::Module& module, const std::string& path,
                                const WeightImportOptions& options = {});

}  // namespace focaldet::model
