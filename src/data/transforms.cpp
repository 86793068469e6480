#include "data/transforms.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <opencv2/imgproc.hpp>

#include "common/error.h"
#include "data/rng.h"

namespace focaldet::data {

void validate(const TransformOptions& options) {
  check(!options.shorter_sides.empty(), "transform: shorter_sides is empty");
  for (int s : options.shorter_sides) {
    check(s > 0, "transform: shorter side must be positive, got " + std::to_string(s));
  }
  check(options.flip_prob >= 0 && options.flip_prob <= 1,
        "transform: flip_prob must be in [0, 1], got " + std::to_string(options.flip_prob));
  check(options.vflip_prob >= 0 && options.vflip_prob <= 1,
        "transform: vflip_prob must be in [0, 1], got " + std::to_string(options.vflip_prob));
  const JitterOptions& j = options.jitter;
  check(j.brightness >= 0 && j.contrast >= 0 && j.saturation >= 0,
        "transform: jitter strengths must be >= 0");
  for (float s : options.std) check(s > 0, "transform: normalisation std must be > 0");
}

namespace {

// A factor uniform in [max(0, 1 - strength), 1 + strength]; draws even when strength is 0 so
// that turning one adjustment on leaves the other draws of the image unchanged.
float draw_factor(Rng& rng, double strength) {
  const double u = rng.uniform(std::max(0.0, 1.0 - strength), 1.0 + strength);
  return strength > 0 ? static_cast<float>(u) : 1.f;
}

}  // namespace

TransformParams draw_transform_params(const TransformOptions& options, uint64_t seed) {
  Rng rng(seed);
  TransformParams p;
  p.shorter_side = options.shorter_sides[rng.uniform_int(options.shorter_sides.size())];
  p.flip = rng.uniform() < options.flip_prob;
  p.brightness = draw_factor(rng, options.jitter.brightness);
  p.contrast = draw_factor(rng, options.jitter.contrast);
  p.saturation = draw_factor(rng, options.jitter.saturation);
  // Drawn last and only when enabled, so the other draws are the same with or without it.
  if (options.vflip_prob > 0) p.vflip = rng.uniform() < options.vflip_prob;
  return p;
}

ResizedSize resized_size(int width, int height, int shorter_side, int max_size) {
  check(width > 0 && height > 0, "resize: image size must be positive, got " +
                                     std::to_string(width) + "x" + std::to_string(height));
  const double shorter = std::min(width, height);
  const double longer = std::max(width, height);
  double scale = shorter_side / shorter;
  if (max_size > 0 && longer * scale > max_size) scale = max_size / longer;
  ResizedSize r;
  r.scale = scale;
  // detectron2 rounds with int(x + 0.5); so do we, and never below one pixel.
  r.width = std::max(1, static_cast<int>(width * scale + 0.5));
  r.height = std::max(1, static_cast<int>(height * scale + 0.5));
  return r;
}

void scale_boxes(std::vector<Box>& boxes, double scale) {
  for (Box& b : boxes) {
    b.x1 = static_cast<float>(b.x1 * scale);
    b.y1 = static_cast<float>(b.y1 * scale);
    b.x2 = static_cast<float>(b.x2 * scale);
    b.y2 = static_cast<float>(b.y2 * scale);
  }
}

void flip_boxes(std::vector<Box>& boxes, int width) {
  // Pixel column i goes to width - 1 - i, so the continuous coordinate x (a pixel edge) goes to
  // width - x, and the left and right edges swap.
  const float w = static_cast<float>(width);
  for (Box& b : boxes) {
    const float x1 = b.x1;
    b.x1 = w - b.x2;
    b.x2 = w - x1;
  }
}

void vflip_boxes(std::vector<Box>& boxes, int height) {
  const float h = static_cast<float>(height);
  for (Box& b : boxes) {
    const float y1 = b.y1;
    b.y1 = h - b.y2;
    b.y2 = h - y1;
  }
}

TransformedSample transform_image(const cv::Mat& bgr, const TransformParams& params,
                                  const TransformOptions& options, std::vector<Box> boxes,
                                  std::vector<int64_t> labels, std::vector<Box> crowd_boxes) {
  check(bgr.type() == CV_8UC3, "transform: expected an 8-bit 3-channel (BGR) image");
  check(boxes.size() == labels.size(), "transform: boxes and labels differ in length");
  const ResizedSize size = resized_size(bgr.cols, bgr.rows, params.shorter_side, options.max_size);
  TransformedSample s;
  if (size.width == bgr.cols && size.height == bgr.rows) {
    s.image = bgr;  // shallow: nothing to resample
  } else {
    cv::resize(bgr, s.image, cv::Size(size.width, size.height), 0, 0, cv::INTER_LINEAR);
  }
  s.params = params;
  s.scale = size.scale;
  s.original_width = bgr.cols;
  s.original_height = bgr.rows;
  scale_boxes(boxes, size.scale);
  scale_boxes(crowd_boxes, size.scale);
  if (params.flip) {
    flip_boxes(boxes, size.width);
    flip_boxes(crowd_boxes, size.width);
  }
  if (params.vflip) {
    vflip_boxes(boxes, size.height);
    vflip_boxes(crowd_boxes, size.height);
  }
  s.boxes = std::move(boxes);
  s.labels = std::move(labels);
  s.crowd_boxes = std::move(crowd_boxes);
  return s;
}

namespace {

inline float clamp255(float v) { return std::min(255.f, std::max(0.f, v)); }

// ITU-R 601 luma, as torchvision's rgb_to_grayscale.
constexpr float kGreyR = 0.299f, kGreyG = 0.587f, kGreyB = 0.114f;

}  // namespace

void write_normalized(const TransformedSample& sample, const TransformOptions& options, float* out,
                      int out_height, int out_width) {
  const cv::Mat& img = sample.image;
  check(img.type() == CV_8UC3, "write_normalized: expected an 8-bit 3-channel (BGR) image");
  check(img.rows <= out_height && img.cols <= out_width,
        "write_normalized: image larger than its slot in the batch");
  const int h = img.rows, w = img.cols;
  const TransformParams& p = sample.params;

  // out = (v / 255 - mean) / std = v * gain + bias, per RGB channel.
  std::array<float, 3> gain{}, bias{};
  for (int c = 0; c < 3; ++c) {
    gain[c] = 1.f / (255.f * options.std[c]);
    bias[c] = -options.mean[c] / options.std[c];
  }

  // Brightness and contrast act on each channel value alone, so they fold, with the
  // normalisation, into one 256-entry table per channel. Saturation mixes channels (blend with
  // the pixel's grey) and needs the per-pixel path below.
  const bool jitter = p.brightness != 1.f || p.contrast != 1.f || p.saturation != 1.f;
  const bool per_pixel = p.saturation != 1.f;
  std::array<std::array<float, 256>, 3> lut;  // indexed by RGB channel, then the uint8 value
  if (!jitter) {
    for (int c = 0; c < 3; ++c)
      for (int v = 0; v < 256; ++v) lut[c][v] = v * gain[c] + bias[c];
  } else {
    std::array<float, 256> bright;
    for (int v = 0; v < 256; ++v) bright[v] = clamp255(v * p.brightness);
    // torchvision's adjust_contrast blends with the mean grey of the (brightened) image; a
    // histogram per channel gets that mean without a float pass over the pixels.
    float mean_grey = 0.f;
    if (p.contrast != 1.f) {
      std::array<std::array<int64_t, 256>, 3> hist{};  // BGR order, as stored
      for (int y = 0; y < h; ++y) {
        const uint8_t* src = img.ptr<uint8_t>(y);
        for (int x = 0; x < 3 * w; x += 3) {
          ++hist[0][src[x]];
          ++hist[1][src[x + 1]];
          ++hist[2][src[x + 2]];
        }
      }
      double sum = 0;
      for (int v = 0; v < 256; ++v) {
        sum += bright[v] * (kGreyB * hist[0][v] + kGreyG * hist[1][v] + kGreyR * hist[2][v]);
      }
      mean_grey = static_cast<float>(sum / (static_cast<double>(h) * w));
    }
    for (int c = 0; c < 3; ++c) {
      for (int v = 0; v < 256; ++v) {
        const float bc = clamp255(p.contrast * bright[v] + (1.f - p.contrast) * mean_grey);
        lut[c][v] = per_pixel ? bc : bc * gain[c] + bias[c];
      }
    }
  }

  const size_t plane = static_cast<size_t>(out_height) * out_width;
  float* const planes[3] = {out, out + plane, out + 2 * plane};
  const float s = p.saturation;
  for (int y = 0; y < h; ++y) {
    const uint8_t* src = img.ptr<uint8_t>(p.vflip ? h - 1 - y : y);
    float* r = planes[0] + static_cast<size_t>(y) * out_width;
    float* g = planes[1] + static_cast<size_t>(y) * out_width;
    float* b = planes[2] + static_cast<size_t>(y) * out_width;
    // Flipping reads the source row backwards: step -3 bytes from the last pixel.
    const uint8_t* px = p.flip ? src + 3 * (w - 1) : src;
    const ptrdiff_t step = p.flip ? -3 : 3;
    if (!per_pixel) {
      for (int x = 0; x < w; ++x, px += step) {
        r[x] = lut[0][px[2]];
        g[x] = lut[1][px[1]];
        b[x] = lut[2][px[0]];
      }
    } else {
      for (int x = 0; x < w; ++x, px += step) {
        const float rv = lut[0][px[2]], gv = lut[1][px[1]], bv = lut[2][px[0]];
        const float grey = kGreyR * rv + kGreyG * gv + kGreyB * bv;
        r[x] = clamp255(s * rv + (1.f - s) * grey) * gain[0] + bias[0];
        g[x] = clamp255(s * gv + (1.f - s) * grey) * gain[1] + bias[1];
        b[x] = clamp255(s * bv + (1.f - s) * grey) * gain[2] + bias[2];
      }
    }
    if (w < out_width) {
      const size_t pad = sizeof(float) * (out_width - w);
      std::memset(r + w, 0, pad);
      std::memset(g + w, 0, pad);
      std::memset(b + w, 0, pad);
    }
  }
  if (h < out_height) {
    const size_t rows = sizeof(float) * static_cast<size_t>(out_height - h) * out_width;
    for (int c = 0; c < 3; ++c)
      std::memset(planes[c] + static_cast<size_t>(h) * out_width, 0, rows);
  }
}

}  // namespace focaldet::data
