// `focaldet predict CONFIG --checkpoint CKPT IMAGES_OR_FOLDER... --out DIR`: runs a trained
// model on images and writes each with its boxes, class names and scores drawn, plus the
// detections as COCO results json.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "config/config_io.h"
#include "data/collate.h"
#include "eval/results_json.h"
#include "infer/coco_results.h"
#include "infer/draw.h"
#include "train/checkpoint.h"
#include "train/device.h"
#include "train/from_config.h"

namespace focaldet::cli {
namespace {
namespace fs = std::filesystem;

struct PredictArgs {
  std::string config, checkpoint, out_dir;
  std::vector<std::string> inputs;
  std::vector<std::string> overrides;
  double draw_thresh = 0.3;
};

bool is_image_file(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return std::tolower(ch); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp" || ext == ".tif" ||
         ext == ".tiff" || ext == ".webp";
}

// Files as given, folders expanded to their image files in name order.
std::vector<fs::path> list_images(const std::vector<std::string>& inputs) {
  std::vector<fs::path> images;
  for (const std::string& input : inputs) {
    const fs::path p(input);
    check(fs::exists(p), input + ": no such file or folder");
    if (fs::is_directory(p)) {
      std::vector<fs::path> found;
      for (const auto& entry : fs::directory_iterator(p)) {
        if (entry.is_regular_file() && is_image_file(entry.path())) found.push_back(entry.path());
      }
      std::sort(found.begin(), found.end());
      check(!found.empty(), input + ": no image files (jpg, png, bmp, tif, webp) in this folder");
      images.insert(images.end(), found.begin(), found.end());
    } else {
      images.push_back(p);
    }
  }
  return images;
}

void run_predict(const PredictArgs& args) {
  const config::Config c = config::load_config(args.config, args.overrides);
  train::apply_threads(c);
  const torch::Device device = train::run_device(c);  // run.device; "cuda" is cuda:0
  train::make_current(device);
  // Class names and ids come from the training json (its images need not be here).
  const data::CocoDataset classes = data::read_coco(train::split_path(c, "train"));
  std::vector<std::string> names;
  for (int64_t id : classes.contiguous_to_category) {
    for (const auto& cat : classes.categories) {
      if (cat.id == id) names.push_back(cat.name);
    }
  }
  auto detector = train::make_detector(c, static_cast<int64_t>(names.size()),
                                       /*load_weights=*/false, device);
  train::load_inference_weights(args.checkpoint, *detector->model());
  detector->model()->eval();
  const data::LoaderOptions loader = train::eval_loader_options(c);
  const std::vector<fs::path> images = list_images(args.inputs);
  std::error_code ec;
  fs::create_directories(args.out_dir, ec);
  check(!ec, args.out_dir + ": cannot create: " + ec.message());

  std::vector<eval::Detection> all;
  nlohmann::ordered_json image_list = nlohmann::ordered_json::array();
  for (std::size_t i = 0; i < images.size(); ++i) {
    const std::string file = images[i].string();
    cv::Mat bgr = cv::imread(file, cv::IMREAD_COLOR);
    check(!bgr.empty(), file + ": cannot read or decode this image");
    const int64_t image_id = static_cast<int64_t>(i) + 1;
    data::TransformParams params;
    params.shorter_side = loader.transform.shorter_sides.at(0);
    data::TransformedSample sample =
        data::transform_image(bgr, params, loader.transform, {}, {}, {});
    sample.image_id = image_id;
    const data::Batch batch = data::collate({sample}, loader.transform, loader.pad_divisor);
    const std::vector<infer::Detections> dets = detector->detect(batch);
    std::vector<eval::Detection> coco = infer::to_coco_results(
        dets[0], image_id, classes.contiguous_to_category, /*flipped=*/false, bgr.cols);
    const at::Tensor label_tensor = dets[0].labels.to(at::kCPU, at::kLong).contiguous();
    const std::vector<int64_t> labels(label_tensor.data_ptr<int64_t>(),
                                      label_tensor.data_ptr<int64_t>() + label_tensor.numel());
    infer::draw_detections(bgr, coco, labels, names, args.draw_thresh);
    std::vector<uchar> encoded;
    const std::string out_name = images[i].stem().string() + ".jpg";
    check(cv::imencode(".jpg", bgr, encoded), file + ": cannot encode the drawn image");
    write_file_atomic((fs::path(args.out_dir) / out_name).string(),
                      std::string(encoded.begin(), encoded.end()));
    image_list.push_back({{"id", image_id}, {"file_name", file}, {"drawn", out_name},
                          {"width", bgr.cols}, {"height", bgr.rows}});
    spdlog::info("{}: {} detections ({} drawn at score >= {})", file, coco.size(),
                 std::count_if(coco.begin(), coco.end(),
                               [&](const eval::Detection& d) { return d.score >= args.draw_thresh; }),
                 args.draw_thresh);
    all.insert(all.end(), coco.begin(), coco.end());
  }
  eval::write_results((fs::path(args.out_dir) / "detections.json").string(), all);
  write_file_atomic((fs::path(args.out_dir) / "images.json").string(), image_list.dump(1) + "\n");
  spdlog::info("{} images -> {} (drawn images, detections.json, images.json: image id -> file)",
               images.size(), args.out_dir);
}

}  // namespace

void register_predict_command(CLI::App& app) {
  auto args = std::make_shared<PredictArgs>();
  CLI::App* cmd = app.add_subcommand(
      "predict", "Run a trained model on images: draws boxes, class names and scores, and writes "
                 "COCO results json");
  cmd->add_option("CONFIG", args->config, "YAML config of the model")->required();
  cmd->add_option("IMAGES", args->inputs, "image files or folders of images")->required();
  cmd->add_option("--checkpoint", args->checkpoint, "checkpoint (checkpoints/*.pt)")->required();
  cmd->add_option("--out", args->out_dir, "output folder")->required();
  cmd->add_option("--draw-thresh", args->draw_thresh, "draw detections scoring at least this")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--set", args->overrides, "override a config key (repeatable)");
  cmd->callback([args] { run_predict(*args); });
}

}  // namespace focaldet::cli
