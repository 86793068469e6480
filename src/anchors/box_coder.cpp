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

// Width, height and centre of each anchor.
struct AnchorGeometry {
  at::Tensor w, h, cx, cy;  // [N] each
};

// Checks `rows` ([N, 4], named `what` in errors) against `anchors` ([N, 4]) for `fn`, and
// returns the anchors' geometry in the dtype of `rows`.
AnchorGeometry anchor_geometry(const at::Tensor& rows, const char* what, const at::Tensor& anchors,
                               const char* fn) {
  check_boxes(rows, what, fn);
  check_boxes(anchors, "anchors", fn);
  check(rows.size(0) == anchors.size(0), std::string(fn) + ": " + std::to_string(rows.size(0)) +
                                             " " + what + " but " +
                                             std::to_string(anchors.size(0)) + " anchors");
  const at::Tensor a = anchors.to(rows.scalar_type());
  AnchorGeometry g;
  g.w = a.select(1, 2) - a.select(1, 0);
  g.h = a.select(1, 3) - a.select(1, 1);
  g.cx = a.select(1, 0) + 0.5 * g.w;
  g.cy = a.select(1, 1) + 0.5 * g.h;
  return g;
}

}  // namespace

at::Tensor encode_boxes(const at::Tensor& boxes, const at::Tensor& anchors,
                        const BoxCoderOptions& o) {
  const auto [aw, ah, ax, ay] = anchor_geometry(boxes, "boxes", anchors, "encode_boxes");
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
  const auto [aw, ah, ax, ay] = anchor_geometry(deltas, "deltas", anchors, "decode_boxes");
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
