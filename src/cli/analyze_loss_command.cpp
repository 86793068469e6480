// `focaldet analyze-loss CONFIG --checkpoint CKPT [--split val] [--gammas 0,0.5,1,2,5]
// [--out DIR] [--max-images N] [--set key=value ...]`: Fig. 4 of the focal loss paper for this
// model and data. The trained model scores every anchor of the split, anchors are assigned as in
// training, and the loss of each sigmoid term is spread out easiest to hardest, per gamma.
#include <spdlog/spdlog.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "common/error.h"
#include "config/config_io.h"
#include "report/loss_analysis_report.h"
#include "train/checkpoint.h"
#include "train/device.h"
#include "train/from_config.h"

namespace focaldet::cli {
namespace {

struct AnalyzeLossArgs {
  std::string config, checkpoint, split = "val", gammas = "0,0.5,1,2,5", out_dir;
  std::vector<std::string> overrides;
  int max_images = 0;
};

// "0,0.5,1,2,5" -> {0, 0.5, 1, 2, 5}; every item a finite number >= 0.
std::vector<double> parse_gammas(const std::string& text) {
  check(!text.empty() && text.back() != ',',
        "--gammas: '" + text + "' is not a comma-separated list of numbers");
  std::vector<double> gammas;
  std::istringstream items(text);
  for (std::string item; std::getline(items, item, ',');) {
    char* end = nullptr;
    const double g = std::strtod(item.c_str(), &end);
    check(end != item.c_str() && *end == '\0' && std::isfinite(g),
          "--gammas: '" + item + "' is not a number (expected e.g. --gammas 0,0.5,1,2,5)");
    check(g >= 0, "--gammas: " + item + " is negative (gamma must be >= 0)");
    gammas.push_back(g);
  }
  return gammas;
}

void run_analyze_loss(const AnalyzeLossArgs& args) {
  report::LossDistributionOptions options;
  options.gammas = parse_gammas(args.gammas);
  check(args.max_images >= 0,
        "--max-images: must be >= 0 (0: every image), got " + std::to_string(args.max_images));
  check(std::filesystem::is_regular_file(args.checkpoint),
        args.checkpoint + ": no such checkpoint file");
  const config::Config c = config::load_config(args.config, args.overrides);
  // The analysis is of C sigmoid terms per anchor; softmax's C + 1 columns are not that.
  check(c.loss.cls != "softmax_focal", config::where(c, "loss.cls") +
                                           ": analyze-loss needs a sigmoid classifier (focal, ce, "
                                           "alpha_ce or ohem), not softmax_focal");
  train::apply_threads(c);
  const torch::Device device = train::run_device(c);  // run.device; "cuda" is cuda:0
  train::make_current(device);
  // Boxes as training sanitises them: the anchors are assigned as the losses assign them.
  const auto data = train::read_split(c, args.split, /*for_training=*/true, args.max_images);
  auto detector = train::make_detector(c, static_cast<int64_t>(data->categories.size()),
                                       /*load_weights=*/false, device);
  const train::TrainState state =
      train::load_inference_weights(args.checkpoint, *detector->model());
  const std::string out =
      !args.out_dir.empty()
          ? args.out_dir
          : (std::filesystem::path(run_dir_of_checkpoint(args.checkpoint)) / "analyze_loss")
                .string();
  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  check(!ec, out + ": cannot create the output folder: " + ec.message());
  spdlog::info("analyze-loss: {} (iteration {}) on the {} split: {} images", args.checkpoint,
               state.iteration, args.split, data->images.size());

  torch::NoGradGuard no_grad;
  detector->model()->eval();
  report::LossDistribution distribution(options);
  data::Loader loader(data, train::eval_loader_options(c));
  loader.start_epoch(0);
  while (auto batch = loader.next()) {
    const train::AssignedOutputs a = detector->forward_assigned(*batch);
    distribution.add(a.out.cls_logits.flatten(0, 1), a.targets().flatten());
  }
  using report::SampleGroup;
  check(distribution.num_samples(SampleGroup::Negative) > 0,
        args.split + " split: no samples to analyse (no anchors?)");
  if (distribution.num_samples(SampleGroup::Positive) == 0)
    spdlog::warn("the {} split gives no positive anchors: only negatives are analysed", args.split);
  const std::string title = "Cumulative loss, easiest to hardest: iteration " +
                            std::to_string(state.iteration) + ", " + args.split + " split (" +
                            std::to_string(data->images.size()) + " images)";
  std::cout << report::write_loss_analysis(distribution, out, title) << std::flush;
  spdlog::info(
      "{} positive and {} negative samples -> {} (cumulative_loss.csv/.png, "
      "loss_shares.csv/.md)",
      distribution.num_samples(SampleGroup::Positive),
      distribution.num_samples(SampleGroup::Negative), out);
}

}  // namespace

void register_analyze_loss_command(CLI::App& app) {
  auto args = std::make_shared<AnalyzeLossArgs>();
  CLI::App* cmd =
      app.add_subcommand("analyze-loss",
                         "How the classification loss is spread over samples, easiest to hardest, "
                         "for several gammas (Fig. 4 of the focal loss paper): CSV, PNG, Markdown");
  cmd->add_option("CONFIG", args->config, "YAML config of the model")->required();
  cmd->add_option("--checkpoint", args->checkpoint, "checkpoint (checkpoints/*.pt)")->required();
  cmd->add_option("--split", args->split, "train, val or test (default: val)");
  cmd->add_option("--gammas", args->gammas, "comma-separated gammas (default: 0,0.5,1,2,5)");
  cmd->add_option("--out", args->out_dir, "output folder (default: RUN_DIR/analyze_loss)");
  cmd->add_option("--max-images", args->max_images, "only the first N images of the split");
  cmd->add_option("--set", args->overrides, "override a config key (repeatable)");
  cmd->callback([args] { run_analyze_loss(*args); });
}

}  // namespace focaldet::cli
