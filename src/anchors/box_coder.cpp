#include "anchors/box_coder.h"

#include <ATen/ATen.h>

#include "common/error.h"

namespace focaldet::anchors {
namespace {

void check_boxes(const at::Tensor& t, const char* what, const char* fn) {
  if (t.dim() != 2 || t.size(1) != 4) {
    throw Error(std::string(fn) + ": " + what + " must be [N, 4], got " + c10::str(t.sizes()));
  }
}

}  // namespace

at::Tensor encode_boxes(const at::Tensor& boxes, const at::Tensor& anchors,
                        const BoxCoderOptions& o) {
  check_boxes(boxes, "boxes", "encode_boxes");
  check_boxes(anchors, "anchors", "encode_boxes");
  check(boxes.size(0) == anchors.size(0), "encode_boxes: " + std::to_string(boxes.size(0)) +
                                              " boxes but " + std::to_string(anchors.size(0)) +
                                              " anchors");
  const at::Tensor a = anchors.to(boxes.scalar_type());
  const at::Tensor aw = a.select(1, 2) - a.select(1, 0);
  const at::Tensor ah = a.select(1, 3) - a.select(1, 1);
  const at::Tensor ax = a.select(1, 0) + 0.5 * aw;
  const at::Tensor ay = a.select(1, 1) + 0.5 * ah;
  const at::Tensor gw = boxes.select(1, 2) - boxes.select(1, 0);
  const at::Tensor gh = boxes.select(1, 3) - boxes.select(1, 1);
  const at::Tensor gx = boxes.select(1, 0) + 0.5 * gw;
  const at::Tensor gy = boxes.select(1, 1) + 0.5 * gh;
  return at::stack({o.wx * (gx - ax) / aw, o.wy * (gy - ay) / ah, o.ww * at::log(gw / aw),
                    o.wh * at::log(gh / ah)},
                   1);
}

at::Tensor decode_boxes(const at::Tensor& deltas, const at::Tensor& anchors,
                        const BoxCoderOptions& o) {
  check_boxes(deltas, "deltas", "decode_boxes");
  check_boxes(anchors, "anchors", "decode_boxes");
  check(deltas.size(0) == anchors.size(0), "decode_boxes: " + std::to_string(deltas.size(0)) +
                                               " deltas but " + std::to_string(anchors.size(0)) +
                                               " anchors");
  const at::Tensor a = anchors.to(deltas.scalar_type());
  const at::Tensor aw = a.select(1, 2) - a.select(1, 0);
  const at::Tensor ah = a.select(1, 3) - a.select(1, 1);
  const at::Tensor ax = a.select(1, 0) + 0.5 * aw;
  const at::Tensor ay = a.select(1, 1) + 0.5 * ah;
  const at::Tensor dx = deltas.select(1, 0) / o.wx;
  const at::Tensor dy = deltas.select(1, 1) / o.wy;
  const at::Tensor dw = at::clamp_max(deltas.select(1, 2) / o.ww, o.clip);
  const at::Tensor dh = at::clamp_max(deltas.select(1, 3) / o.wh, o.clip);
  const at::Tensor cx = dx * aw + ax;
  const at::Tensor cy = dy * ah + ay;
  const at::Tensor half_w = 0.5 * (at::exp(dw) * aw);
  const at::Tensor half_h = 0.5 * (at::exp(dh) * ah);
  return at::stack({cx - half_w, cy - half_h, cx + half_w, cy + half_h}, 1);
}

}  // namespace focaldet::anchors
