#include "infer/nms.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <vector>

#include "common/error.h"

namespace focaldet::infer {
namespace {

template <typename T>
at::Tensor nms_kernel(const at::Tensor& boxes, const at::Tensor& scores, const int64_t* classes,
                      double iou_threshold) {
  const int64_t n = boxes.size(0);
  const at::Tensor order =
      std::get<1>(scores.sort(/*stable=*/true, /*dim=*/0, /*descending=*/true));
  const T* b = boxes.data_ptr<T>();
  const int64_t* ord = order.data_ptr<int64_t>();
  std::vector<T> area(n);
  for (int64_t i = 0; i < n; ++i)
    area[i] = (b[4 * i + 2] - b[4 * i]) * (b[4 * i + 3] - b[4 * i + 1]);
  std::vector<char> suppressed(n, 0);
  std::vector<int64_t> keep;
  for (int64_t oi = 0; oi < n; ++oi) {
    const int64_t i = ord[oi];
    if (suppressed[i]) continue;
    keep.push_back(i);
    const T ix1 = b[4 * i], iy1 = b[4 * i + 1], ix2 = b[4 * i + 2], iy2 = b[4 * i + 3];
    for (int64_t oj = oi + 1; oj < n; ++oj) {
      const int64_t j = ord[oj];
      if (suppressed[j] || (classes != nullptr && classes[j] != classes[i])) continue;
      // iou = inter / (area_i + area_j - inter), inter clamped at 0 per axis (torchvision's rule).
      const T w = std::max(T(0), std::min(ix2, b[4 * j + 2]) - std::max(ix1, b[4 * j]));
      const T h = std::max(T(0), std::min(iy2, b[4 * j + 3]) - std::max(iy1, b[4 * j + 1]));
      const T inter = w * h;
      const T iou = inter / (area[i] + area[j] - inter);
      if (iou > iou_threshold) suppressed[j] = 1;
    }
  }
  return at::tensor(keep, at::kLong);
}

at::Tensor run(const at::Tensor& boxes_in, const at::Tensor& scores_in, const at::Tensor* classes,
               double iou_threshold, const char* fn) {
  if (boxes_in.dim() != 2 || boxes_in.size(1) != 4) {
    throw Error(std::string(fn) + ": boxes must be [N, 4], got " + c10::str(boxes_in.sizes()));
  }
  check(scores_in.dim() == 1 && scores_in.size(0) == boxes_in.size(0),
        std::string(fn) + ": scores must be [N] with N = " + std::to_string(boxes_in.size(0)) +
            ", got " + c10::str(scores_in.sizes()));
  // The kept indices live where the boxes do (an index on another device cannot index them).
  const at::Device device = boxes_in.device();
  if (boxes_in.size(0) == 0) return at::empty({0}, at::dtype(at::kLong).device(device));
  const at::Tensor boxes = boxes_in.to(at::kCPU).contiguous();
  const at::Tensor scores = scores_in.to(at::kCPU).contiguous();
  at::Tensor cls;
  if (classes != nullptr) {
    check(classes->dim() == 1 && classes->size(0) == boxes.size(0),
          std::string(fn) + ": classes must be [N] with N = " + std::to_string(boxes.size(0)) +
              ", got " + c10::str(classes->sizes()));
    cls = classes->to(at::kCPU, at::kLong).contiguous();
  }
  const int64_t* cp = classes != nullptr ? cls.data_ptr<int64_t>() : nullptr;
  at::Tensor keep;
  if (boxes.scalar_type() == at::kDouble) {
    keep = nms_kernel<double>(boxes, scores, cp, iou_threshold);
  } else {
    keep = nms_kernel<float>(boxes.to(at::kFloat), scores, cp, iou_threshold);
  }
  return keep.to(device);
}

}  // namespace

at::Tensor nms(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold) {
  return run(boxes, scores, nullptr, iou_threshold, "nms");
}

at::Tensor batched_nms(const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& classes,
                       double iou_threshold) {
  return run(boxes, scores, &classes, iou_threshold, "batched_nms");
}

}  // namespace focaldet::infer
