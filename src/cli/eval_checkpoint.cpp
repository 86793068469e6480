// `focaldet eval CONFIG --checkpoint CKPT [--split test]`: runs a trained model on a split and
// evaluates it as pycocotools would.
#include <spdlog/spdlog.h>

#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "common/error.h"
#include "config/config_io.h"
#include "eval/eval_report.h"
#include "eval/results_json.h"
#include "train/checkpoint.h"
#include "train/device.h"
#include "train/evaluate_split.h"
#include "train/from_config.h"

namespace focaldet::cli {

std::string run_dir_of_checkpoint(const std::string& checkpoint) {
  const std::filesystem::path folder = std::filesystem::path(checkpoint).parent_path();
  return (folder.filename() == "checkpoints" ? folder.parent_path() : folder).string();
}

void run_eval_checkpoint(const EvalCheckpointArgs& args) {
  const config::Config c = config::load_config(args.config, args.overrides);
  const int threads = train::apply_threads(c);
  const torch::Device device = train::run_device(c);  // run.device; "cuda" is cuda:0
  train::make_current(device);
  const std::string split = args.split.empty() ? c.eval.split : args.split;
  const auto gt = train::read_split(c, split, /*for_training=*/false);
  auto detector = train::make_detector(c, static_cast<int64_t>(gt->categories.size()),
                                       /*load_weights=*/false, device);
  const train::TrainState state =
      train::load_inference_weights(args.checkpoint, *detector->model());
  spdlog::info("evaluating {} (iteration {}{}{}) on the {} split: {} images", args.checkpoint,
               state.iteration, state.averaged ? ", model EMA weights" : "",
               c.inference.tta == "none" ? "" : ", test-time flips " + c.inference.tta, split,
               gt->images.size());
  const train::SplitEvaluation e =
      train::evaluate_split(*detector, gt, train::eval_loader_options(c), threads);
  std::cout << eval::format_report(e.result) << std::flush;

  namespace fs = std::filesystem;
  const fs::path out = !args.out_dir.empty() ? fs::path(args.out_dir)
                                             : fs::path(run_dir_of_checkpoint(args.checkpoint));
  std::error_code ec;
  fs::create_directories(out.empty() ? fs::path(".") : out, ec);
  check(!ec, out.string() + ": cannot create the output folder: " + ec.message());
  const std::string dets = (out / ("detections_" + split + ".json")).string();
  eval::write_results(dets, e.detections);
  const std::string metrics = args.json_out.empty()
                                  ? (out / ("metrics_" + split + ".json")).string()
                                  : args.json_out;
  eval::write_metrics_json(metrics, e.result);
  spdlog::info("{} detections -> {}; metrics -> {} ({:.1f} img/s inference)", e.detections.size(),
               dets, metrics, e.images_per_second);
}

}  // namespace focaldet::cli
