// `focaldet eval --annotations GT.json --detections DETS.json [--json OUT.json]`: pycocotools'
// bbox evaluation of a results file: the 12 summary lines, AP per category, metrics json.
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cli/commands.h"
#include "common/error.h"
#include "data/coco_dataset.h"
#include "eval/coco_eval.h"
#include "eval/eval_report.h"
#include "eval/ground_truth_json.h"
#include "eval/results_json.h"

namespace focaldet::cli {
namespace {

struct EvalArgs {
  std::string config;  // with --checkpoint: run the model on a split of the config's data
  std::string checkpoint;
  std::string split;  // empty: the config's eval.split
  std::string out_dir;
  std::vector<std::string> overrides;
  std::string annotations;
  std::string detections;
  std::string json_out;
  bool timings = false;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// --json PATH must not replace one of the command's own inputs (a hard link or the same path),
// nor anything but a regular file (write_file_atomic refuses those too, but only after the
// evaluation: here it fails at once). "-" is stdout.
void check_json_target(const EvalArgs& args) {
  if (args.json_out.empty() || args.json_out == "-") return;
  struct stat st {};
  if (::lstat(args.json_out.c_str(), &st) != 0) return;  // a new file
  if (!S_ISREG(st.st_mode)) {
    throw Error("eval: --json " + args.json_out +
                ": it exists and is not a regular file (a symbolic link, FIFO, device or "
                "folder); refusing to replace it");
  }
  for (const std::string* input : {&args.annotations, &args.detections}) {
    std::error_code ec;
    if (std::filesystem::equivalent(args.json_out, *input, ec)) {
      throw Error("eval: --json " + args.json_out + " is the input " + *input +
                  "; refusing to overwrite it (give another path, or - for stdout)");
    }
  }
}

// What pycocotools leaves out without a word, said once on stderr.
void print_notes(const eval::CocoEvalResult& result) {
  if (result.detections_left_out > 0) {
    std::fprintf(stderr,
                 "note: %lld detections of categories not in the ground truth left out "
                 "(pycocotools does the same)\n",
                 static_cast<long long>(result.detections_left_out));
  }
  if (result.annotations_left_out > 0) {
    std::fprintf(stderr,
                 "note: %lld ground truth annotations of images or categories not listed in it "
                 "left out (pycocotools does the same)\n",
                 static_cast<long long>(result.annotations_left_out));
  }
}

void run_eval_files(const EvalArgs& args) {
  check_json_target(args);
  const auto start = std::chrono::steady_clock::now();
  double gt_seconds = 0;
  // The two files are parsed at the same time, one per core.
  data::CocoDataset gt;
  std::exception_ptr gt_failure;
  std::thread gt_reader([&] {
    try {
      // Only what evaluation needs, as leniently as pycocotools (training's read_coco refuses
      // an absolute file_name, a missing width, iscrowd 2, ...); boxes exactly as written.
      gt = eval::read_ground_truth(args.annotations);
      gt_seconds = seconds_since(start);
    } catch (...) {
      gt_failure = std::current_exception();
    }
  });
  std::vector<eval::Detection> detections;
  try {
    detections = eval::read_results(args.detections);
  } catch (...) {
    gt_reader.join();
    throw;
  }
  const double dets_seconds = seconds_since(start);
  gt_reader.join();
  if (gt_failure) std::rethrow_exception(gt_failure);

  const auto eval_start = std::chrono::steady_clock::now();
  eval::CocoEvalResult result;
  try {
    result = eval::evaluate(gt, detections);
  } catch (const Error& e) {
    throw Error(args.detections + ": " + e.what());  // an entry that does not fit the gt
  }
  const double eval_seconds = seconds_since(eval_start);
  print_notes(result);
  if (args.json_out == "-") {
    // stdout carries the json alone (for a pipe); the report goes to stderr.
    std::cerr << eval::format_report(result) << std::flush;
    std::cout << eval::metrics_json(result) << "\n" << std::flush;
  } else {
    std::cout << eval::format_report(result) << std::flush;
    if (!args.json_out.empty()) eval::write_metrics_json(args.json_out, result);
  }
  if (args.timings) {
    std::fprintf(stderr,
                 "timings: ground truth %.3f s and detections %.3f s (read in parallel), "
                 "evaluate %.3f s, total %.3f s\n",
                 gt_seconds, dets_seconds, eval_seconds, seconds_since(start));
  }
}

void run_eval(const EvalArgs& args) {
  if (!args.config.empty() || !args.checkpoint.empty()) {
    check(!args.config.empty() && !args.checkpoint.empty(),
          "eval: CONFIG and --checkpoint go together");
    check(args.annotations.empty() && args.detections.empty(),
          "eval: give CONFIG --checkpoint, or --annotations with --detections, not both");
    check(args.json_out != "-", "eval: --json - (stdout) is for --annotations with --detections");
    EvalCheckpointArgs a{args.config,  args.checkpoint, args.split,
                         args.out_dir, args.json_out,   args.overrides};
    run_eval_checkpoint(a);
    return;
  }
  check(!args.annotations.empty() && !args.detections.empty(),
        "eval: --annotations and --detections are required (or CONFIG --checkpoint CKPT)");
  run_eval_files(args);
}

}  // namespace

void register_eval_command(CLI::App& app) {
  auto args = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand(
      "eval",
      "Evaluate COCO results (bbox) against COCO ground truth, as pycocotools does: "
      "--annotations GT --detections DETS, or CONFIG --checkpoint CKPT [--split test]");
  cmd->add_option("CONFIG", args->config, "YAML config of a trained model (with --checkpoint)");
  // No CLI::ExistingFile here: a missing checkpoint is an Error naming it (exit 2).
  cmd->add_option("--checkpoint", args->checkpoint, "checkpoint to evaluate (checkpoints/*.pt)");
  cmd->add_option("--split", args->split,
                  "split of the config's data: train, val or test (default: eval.split)")
      ->check(CLI::IsMember({"train", "val", "test"}));
  cmd->add_option("--out", args->out_dir,
                  "folder for detections_<split>.json and metrics_<split>.json (default: the "
                  "checkpoint's run dir)");
  cmd->add_option("--set", args->overrides, "override a config key (repeatable)");
  cmd->add_option("--annotations", args->annotations, "COCO instances json (ground truth)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--detections", args->detections, "COCO results json (a list of detections)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--json", args->json_out,
                  "write the 12 stats by name and AP per category id to this json (- for "
                  "stdout; the report then goes to stderr)");
  cmd->add_flag("--timings", args->timings, "print the time each phase took to stderr");
  cmd->callback([args] { run_eval(*args); });
}

}  // namespace focaldet::cli
