#pragma once
// Per-image transforms: resize to a shorter side with a longer-side cap (detectron2's
// ResizeShortestEdge), horizontal flip, photometric jitter (torchvision's ColorJitter, fixed
// order) and ImageNet normalisation. Boxes move with the image. Free functions on OpenCV images
// and plain boxes; no torch here. The random choices for one image are drawn up-front into a
// TransformParams from a per-image seed, so the result never depends on which thread ran it.
#include <array>
#include <cstdint>
#include <opencv2/core/mat.hpp>
#include <string>
#include <vector>

namespace focaldet::data {

// A box in pixels, continuous coordinates: a box covering pixel columns 0..w-1 has x1 = 0,
// x2 = w (COCO's [x, y, w, h] is [x1, y1, x2 - x1, y2 - y1]).
struct Box {
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;
};

// Factors are drawn uniformly from [max(0, 1 - x), 1 + x]; 0 turns that adjustment off.
struct JitterOptions {
  double brightness = 0.0;
  double contrast = 0.0;
  double saturation = 0.0;
  bool enabled() const { return brightness > 0 || contrast > 0 || saturation > 0; }
};

struct TransformOptions {
  // Target length of the shorter side. One value, or several for multi-scale training: then one
  // is drawn per image. RetinaNet (Lin et al. 2017, sec. 5.1) trains at 800.
  std::vector<int> shorter_sides = {800};
  int max_size = 1333;     // cap on the longer side after resizing; <= 0: no cap
  double flip_prob = 0.5;  // probability of a horizontal flip; 0 for evaluation
  // Probability of a vertical flip (training only: Batch records horizontal flips alone). For
  // data without an "up", such as cells under a microscope; 0 as in the paper.
  double vflip_prob = 0.0;
  JitterOptions jitter;    // off by default, as in the paper
  // Normalisation of RGB values in [0, 1]: (v - mean) / std, ImageNet statistics, matching
  // torchvision's pretrained ResNets.
  std::array<float, 3> mean = {0.485f, 0.456f, 0.406f};
  std::array<float, 3> std = {0.229f, 0.224f, 0.225f};
};

// Throws focaldet::Error when an option is out of range (empty sizes, non-positive size, ...).
void validate(const TransformOptions& options);

// The random choices for one image.
struct TransformParams {
  int shorter_side = 800;
  bool flip = false;
  bool vflip = false;
  float brightness = 1.f;  // multiplies every channel
  float contrast = 1.f;    // blends with the mean grey of the image (1: unchanged)
  float saturation = 1.f;  // blends each pixel with its own grey (0: greyscale, 1: unchanged)
};

// Draws the parameters for one image from `seed` (derive it from run seed, epoch and image).
TransformParams draw_transform_params(const TransformOptions& options, uint64_t seed);

// The size an image of width x height gets for a shorter side and longer-side cap (<= 0: none):
// scale = shorter_side / min(w, h), lowered to max_size / max(w, h) when the longer side would
// exceed the cap; new sizes are round(w * scale), round(h * scale).
struct ResizedSize {
  int width = 0;
  int height = 0;
  double scale = 1.0;  // resized = original * scale; detections / scale give original pixels
};
ResizedSize resized_size(int width, int height, int shorter_side, int max_size);

// boxes *= scale (all four coordinates).
void scale_boxes(std::vector<Box>& boxes, double scale);

// Mirrors boxes in an image `width` pixels wide: x1' = width - x2, x2' = width - x1.
void flip_boxes(std::vector<Box>& boxes, int width);

// Mirrors boxes upside down in an image `height` pixels high: y1' = height - y2, ...
void vflip_boxes(std::vector<Box>& boxes, int height);

// One image after decoding and the geometric transforms, ready for collation. The pixels are
// resized but not yet flipped or normalised: write_normalized() does both while copying into
// the batch tensor, so the image is read exactly once after resizing.
struct TransformedSample {
  cv::Mat image;                 // resized, BGR uint8 (as cv::imread gives it), height x width
  TransformParams params;        // flip and jitter still to apply to `image`
  std::vector<Box> boxes;        // resized and flipped: in the final image's pixels
  std::vector<int64_t> labels;   // contiguous class index per box
  std::vector<Box> crowd_boxes;  // iscrowd regions, resized and flipped like `boxes`
  int64_t image_id = 0;
  double scale = 1.0;
  int original_width = 0;
  int original_height = 0;
};

// Resizes `bgr` (decoded, original size) for `params`, moves the boxes with it and fills the
// bookkeeping; `boxes`/`crowd_boxes` are in original pixels on entry.
TransformedSample transform_image(const cv::Mat& bgr, const TransformParams& params,
                                  const TransformOptions& options, std::vector<Box> boxes,
                                  std::vector<int64_t> labels, std::vector<Box> crowd_boxes);

// Writes `sample.image` into `out`, a float CHW block of [3, out_height, out_width] (out_height
// >= image rows, out_width >= image cols), as RGB with the sample's flip and jitter applied and
// then normalised; the padding (right and bottom) is set to 0. Every output value is written
// exactly once, so `out` may be uninitialised memory.
void write_normalized(const TransformedSample& sample, const TransformOptions& options, float* out,
                      int out_height, int out_width);

}  // namespace focaldet::data
