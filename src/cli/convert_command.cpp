// focaldet convert voc VOC_ROOT OUT_DIR: Pascal VOC to one COCO json per split.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "data/voc_convert.h"

namespace focaldet::cli {
namespace {

struct ConvertVocArgs {
  std::string voc_root;
  std::string out_dir;
  data::VocConvertOptions options;
};

void run_convert_voc(const ConvertVocArgs& args) {
  const auto summaries = data::convert_voc(args.voc_root, args.out_dir, args.options);
  std::string difficult;  // "train 3, val 1"
  for (const data::VocSplitSummary& s : summaries) {
    spdlog::info("{}: {} images, {} boxes -> {}", s.split, s.num_images, s.num_annotations, s.path);
    if (s.num_difficult > 0) {
      difficult +=
          (difficult.empty() ? "" : ", ") + s.split + " " + std::to_string(s.num_difficult);
    }
  }
  // Said every time: the choice changes what the evaluation counts (data/voc_convert.h).
  if (difficult.empty()) return;
  if (args.options.difficult_as_boxes) {
    spdlog::info(
        "difficult objects ({}) kept as ordinary boxes, iscrowd 0, by --difficult-as-boxes "
        "(VOC: not counted in evaluation; here they are)",
        difficult);
  } else {
    spdlog::info(
        "difficult objects ({}) written as iscrowd 1 regions (VOC: not counted in "
        "evaluation; --difficult-as-boxes keeps them as ordinary boxes)",
        difficult);
  }
}

}  // namespace

void register_convert_command(CLI::App& app) {
  CLI::App* convert = app.add_subcommand("convert", "Convert a dataset to COCO format");
  convert->require_subcommand(1);
  auto args = std::make_shared<ConvertVocArgs>();
  CLI::App* voc = convert->add_subcommand(
      "voc",
      "Pascal VOC (Annotations/, ImageSets/Main/<split>.txt) to OUT_DIR/instances_<split>.json");
  voc->add_option("VOC_ROOT", args->voc_root, "VOC root folder")->required();
  voc->add_option("OUT_DIR", args->out_dir, "output folder (created if absent)")->required();
  voc->add_option("--categories", args->options.categories,
                  "class names in id order (default: most frequent first)")
      ->delimiter(',');
  voc->add_option("--splits", args->options.splits,
                  "splits to convert (default: every ImageSets/Main/<split>.txt)")
      ->delimiter(',');
  voc->add_flag("--difficult-as-boxes", args->options.difficult_as_boxes,
                "write <difficult>1</difficult> objects as ordinary boxes (iscrowd 0), as "
                "detectron2 trains on "
                "them; default: iscrowd 1, so that evaluation ignores them as VOC's does");
  voc->footer(
      "Objects marked <difficult>1</difficult> become iscrowd 1 regions unless "
      "--difficult-as-boxes is given: VOC's evaluation does not count them, COCO has no "
      "'difficult', and focaldet ignores crowd regions in training and evaluation. Their count "
      "is logged.");
  voc->callback([args] { run_convert_voc(*args); });
}

}  // namespace focaldet::cli
