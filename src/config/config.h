#pragma once
// Every key of a focaldet YAML config, with its default, in one place (as detectron2's
// config/defaults.py): a config file only names what differs. Parsed once, at the edge
// (config/config_io.cpp), into these plain structs; nothing below config/ sees YAML.
// Paths are stored resolved against the folder of the config file that set them.
// No torch in this header.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace focaldet::config {

struct RunConfig {
  std::string name;              // run folder name under output_dir; empty: the config's stem
  std::string output_dir = "runs";
  uint64_t seed = 0;             // everything random derives from it: same seed, same run
  int threads = 0;               // intra-op threads for LibTorch; 0: all cores (shared out
                                 // among the ranks of a data-parallel run on this machine)
  // Data-parallel worker processes `focaldet train` starts on this machine, as `--nproc N`
  // (which overrides it); ignored under torchrun or srun, which start the workers themselves.
  // On a CPU, N processes of cores / N threads can beat one process of all cores
  // (docs/distributed.md); train.batch_size is per process.
  int nproc = 1;
  // Where the model, the batches, the assignment and the losses live: cpu | cuda | cuda:N.
  // cuda is cuda:LOCAL_RANK under data-parallel training (each rank its own GPU), cuda:0 for
  // one process; cuda:N is for one process. Needs a CUDA LibTorch and a visible GPU (an error
  // naming this key otherwise). On cuda, dist.backend auto is nccl (in a build with NCCL).
  std::string device = "cpu";
};

// One split of a COCO dataset: its annotation json (and images under data.image_root).
struct DataConfig {
  std::string image_root;        // folder the file_name entries are relative to
  std::string train;             // COCO instances json the model trains on
  std::string val;               // evaluated during training (empty: no evaluation)
  std::string test;              // `focaldet eval --split test`
  int64_t num_classes = 0;       // 0: taken from the train json; else must equal its count
  int num_workers = 2;           // decoding threads
  std::vector<int> shorter_sides = {800};  // one drawn per training image (multi-scale)
  int max_size = 1333;           // cap on the longer side
  double hflip_prob = 0.5;
  double vflip_prob = 0.0;       // vertical flips: for data without an up (cells, aerial images)
  // Photometric jitter in training (torchvision's ColorJitter): each factor drawn per image from
  // [max(0, 1 - x), 1 + x]; 0 (the default, as in the paper) turns it off.
  double brightness = 0.0;
  double contrast = 0.0;
  double saturation = 0.0;
  int pad_divisor = 128;         // batch H, W rounded up to this (>= 32, the stride of C5)
  bool group_by_aspect_ratio = true;
  bool drop_images_without_boxes = false;
};

struct AnchorConfig {
  std::vector<double> base_sizes = {32, 64, 128, 256, 512};  // P3..P7, pixels
  std::vector<double> octave_scales = {1.0, 1.2599210498948732, 1.5874010519681994};
  std::vector<double> aspect_ratios = {0.5, 1.0, 2.0};      // height / width
  // Where a level's anchors sit. level: every 2^l pixels (8..128 for P3..P7), on the centres of
  // its feature map, as detectron2 and MMDetection place them. torchvision: every
  // (padded image size // feature size) pixels per axis, torchvision's AnchorGenerator; the same
  // when the padded size is a multiple of 128, else P6 and P7 anchors drift off their features
  // (a 320 x 448 batch puts P7's at 0, 106, 212 instead of 0, 128, 256), differently at each
  // image size, so a model trained at one size misplaces large boxes at another.
  std::string grid = "level";
};

struct ModelConfig {
  int depth = 50;                   // ResNet 18, 34 or 50
  int64_t backbone_width = 64;      // ResNet stem channels (layers 1-4: 1x, 2x, 4x, 8x it);
                                    // 64 is torchvision's (and the only one its weights fit)
  std::string norm = "frozen_bn";   // backbone norm: bn | frozen_bn | gn
  int64_t gn_groups = 32;
  int trainable_layers = 3;         // backbone stages trained, from the top (0..5)
  int64_t fpn_channels = 256;
  std::string p6_from = "p5";       // p5 (torchvision) | c5 (the paper)
  int64_t head_convs = 4;
  int64_t head_channels = 256;
  bool head_group_norm = false;
  int64_t head_gn_groups = 32;
  bool winograd = true;             // 3x3 stride-1 convs on oneDNN's Winograd algorithm
                                    // (backbone, FPN and head, any norm, in training; frozen_bn
                                    // and no head GroupNorm for inference; needs AVX-512)
  double prior = 0.01;              // initial foreground probability of every anchor
  std::string weights;              // state dict to start from (scripts/export_torchvision_
                                    // weights.py); empty: train from scratch
  bool weights_allow_missing = true;  // an ImageNet backbone file has no FPN/head
  AnchorConfig anchors;
};

struct AssignerConfig {
  std::string kind = "max_iou";     // max_iou | atss
  double pos_iou = 0.5;
  double neg_iou = 0.4;
  bool low_quality_matches = true;
  int64_t atss_top_k = 9;
  double crowd_ioa = 0.0;
};

struct LossConfig {
  std::string cls = "focal";        // focal | ce | alpha_ce | ohem | softmax_focal
  double alpha = 0.25;              // -1: no alpha balancing
  double gamma = 2.0;
  double ohem_neg_pos_ratio = 3.0;
  double easy_prob = 0.1;           // logger: a negative is easy when all probabilities < this
  std::string box = "l1";           // smooth_l1 | l1 | giou
  double smooth_l1_beta = 1.0 / 9.0;
  double box_weight = 1.0;
  // num_pos: batch sum / max(1, positives); ema: detectron2's moving average;
  // per_image: each image's loss / max(1, its positives), summed over images, divided by B
  // (torchvision's RetinaNet.compute_loss).
  std::string normalizer = "num_pos";
};

struct OptimizerConfig {
  std::string name = "sgd";         // sgd | adamw
  double lr = 0.01;
  double momentum = 0.9;            // sgd
  bool nesterov = false;            // sgd
  double weight_decay = 1e-4;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;  // adamw
  double clip_grad_norm = 0.0;      // 0: no clipping
};

struct ScheduleConfig {
  std::string kind = "cosine";      // constant | step | cosine (over the whole budget)
  int64_t warmup_iters = 100;       // linear warmup from warmup_factor * lr
  double warmup_factor = 0.001;
  std::vector<double> steps = {0.67, 0.89};  // step: fractions of the budget where lr *= gamma
  double gamma = 0.1;
  double min_lr_factor = 0.0;       // cosine ends at lr * this
};

struct TrainConfig {
  int64_t batch_size = 2;
  // Budget: exactly one > 0. Minutes of wall clock make the schedule follow elapsed time, so
  // only iteration and epoch budgets give bit-identical reruns.
  int64_t max_iters = 0;
  int64_t max_epochs = 0;
  double max_minutes = 0;
  int64_t log_every = 20;           // iterations per metrics.jsonl line (averaged over them)
  int64_t eval_every = 0;           // iterations between evaluations on data.val; 0: at the end
  int64_t checkpoint_every = 200;   // iterations between checkpoints (and at the end)
  // Model EMA (Polyak averaging, as in YOLOX, Ultralytics and timm): evaluation, best.pt and
  // `focaldet eval / predict` use weights averaged over the steps, w_avg = d w_avg + (1-d) w,
  // with d = min(ema_decay, (1 + step) / (10 + step)) (TensorFlow's warm-up of the average).
  // 0: off, the weights of the last step.
  double ema_decay = 0.0;
  std::string progress = "auto";    // auto (a live line on a terminal) | on | off
};

struct EvalConfig {
  std::string split = "val";        // val | test | train
  int64_t batch_size = 4;
  int shorter_side = 0;             // 0: the first of data.shorter_sides
  int max_images = 0;               // evaluate on the first N images only; 0: all
};

struct InferenceConfig {
  double score_thresh = 0.05;
  int64_t topk_per_level = 1000;
  double nms_thresh = 0.5;
  int64_t max_detections = 100;
  // Test-time augmentation: none; hflip (the image and its left-right mirror); hvflip (and the
  // up-down mirror and both: 4 passes, for data without an up). Each view's detections are
  // mirrored back and merged by class-wise NMS at nms_thresh. Evaluation and predict use it.
  std::string tta = "none";
};

// Data-parallel training (docs/distributed.md): used when launched with torchrun, with
// `focaldet train --nproc N`, or with RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT set.
// train.batch_size is per rank; the global batch is batch_size x world size.
struct DistConfig {
  double timeout_seconds = 300;     // a collective waiting longer for a peer stops the run
  double bucket_mb = 25;            // gradient all-reduce bucket size (as DDP's bucket_cap_mb)
  bool overlap = true;              // start a bucket's all-reduce during backward when ready
  std::string lr_scaling = "none";  // none | linear: optimizer.lr x world size (Goyal et al.)
  int64_t check_sync_every = 0;     // every N steps, check all ranks hold the same parameters
  // auto | gloo | nccl. auto: nccl when this binary has NCCL (cmake -DFOCALDET_CUDA=ON) and the
  // model trains on CUDA, else gloo (always gloo on a CPU-only LibTorch). nccl where it cannot
  // run is an error (dist/backend.h).
  std::string backend = "auto";
};

struct Config {
  std::string path;                 // the file it was read from ("" when built in code)
  // Where each key that a file or --set gave was set: "loss.gamma" -> "configs/x.yaml:12"
  // (or "--set loss.gamma=3"), so checks made later (the class count against the dataset)
  // can name the line.
  std::map<std::string, std::string> origins;
  RunConfig run;
  DataConfig data;
  ModelConfig model;
  AssignerConfig assigner;
  LossConfig loss;
  OptimizerConfig optimizer;
  ScheduleConfig schedule;
  TrainConfig train;
  EvalConfig eval;
  InferenceConfig inference;
  DistConfig dist;
};

}  // namespace focaldet::config
