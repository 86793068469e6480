#pragma once
// From a validated config to the options of each part: the detector, the training and
// evaluation loaders, and the datasets of each split (with the class count checked against
// the config).
#include <memory>
#include <string>

#include "config/config.h"
#include "data/coco_dataset.h"
#include "data/loader.h"
#include "train/detector.h"
#include "train/lr_schedule.h"
#include "train/optimizer.h"

namespace focaldet::train {

DetectorOptions detector_options(const config::Config& config, int64_t num_classes);
data::LoaderOptions train_loader_options(const config::Config& config);
// No flips or jitter, file order, the evaluation shorter side and batch size.
data::LoaderOptions eval_loader_options(const config::Config& config);
OptimizerOptions optimizer_options(const config::Config& config);
ScheduleOptions schedule_options(const config::Config& config);

// The json of a split: "train", "val" or "test"; an Error naming the config key when the split
// has no file in the config.
std::string split_path(const config::Config& config, const std::string& split);

// Reads a split for training (boxes sanitised, images checked) or for evaluation (boxes as
// written, as pycocotools keeps them). Its categories must agree with data.num_classes when that
// is set (the error names the key's file:line). max_images > 0 keeps only the first images
// (eval.max_images, for quick evaluations during training).
std::shared_ptr<const data::CocoDataset> read_split(const config::Config& config,
                                                    const std::string& split, bool for_training,
                                                    int max_images = 0);

// Builds the detector for `num_classes`, with model.weights loaded when set and load_weights
// (a checkpoint about to be loaded replaces them anyway), on `device` (run_device(config),
// train/device.h). The weights are initialised on the CPU and then moved, so a seed gives the
// same initial model on every device.
std::unique_ptr<Detector> make_detector(const config::Config& config, int64_t num_classes,
                                        bool load_weights = true,
                                        const torch::Device& device = torch::kCPU);

// LibTorch intra-op threads: run.threads, or when 0 the cores shared out among the
// `local_world_size` ranks on this machine (at least 1 each; torchrun's OMP_NUM_THREADS=1 idea,
// without leaving cores idle): 2 ranks on 2 cores run 1 thread each, not 2 each on 2 cores.
int default_threads(int cores, int local_world_size);
int apply_threads(const config::Config& config, int local_world_size = 1);

}  // namespace focaldet::train
