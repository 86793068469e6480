// Fuzz target `coco`: the strict COCO reader that training uses (data::parse_coco, the body of
// read_coco), in its three uses: evaluation-style (boxes as written), training (boxes clipped,
// degenerate ones dropped) and training with drop_empty_images and an image root to check.
// Beyond "no crash", it checks what coco_dataset.h promises about a dataset it returns.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "data/coco_dataset.h"
#include "data/image_path.h"
#include "fuzz_util.h"

namespace focaldet::fuzz {
namespace {

using data::CocoDataset;
using data::CocoReadOptions;

// The indices that CocoDataset carries must agree with its lists.
void check_indices(const CocoDataset& ds) {
  FUZZ_CHECK(ds.image_index.size() == ds.images.size(), "image_index size");
  for (std::size_t i = 0; i < ds.images.size(); ++i) {
    const data::CocoImage& image = ds.images[i];
    const auto it = ds.image_index.find(image.id);
    FUZZ_CHECK(it != ds.image_index.end() && it->second == i, "image_index of an image");
    FUZZ_CHECK(image.width > 0 && image.height > 0, "image size not positive");
    FUZZ_CHECK(data::image_path_problem(image.file_name).empty(),
               "file_name accepted: '" + image.file_name + "'");
  }
  FUZZ_CHECK(ds.contiguous_to_category.size() == ds.categories.size(), "contiguous ids");
  FUZZ_CHECK(ds.category_to_contiguous.size() == ds.categories.size(), "category map");
  for (std::size_t k = 0; k < ds.contiguous_to_category.size(); ++k) {
    FUZZ_CHECK(k == 0 || ds.contiguous_to_category[k - 1] < ds.contiguous_to_category[k],
               "contiguous_to_category not ascending");
    const auto it = ds.category_to_contiguous.find(ds.contiguous_to_category[k]);
    FUZZ_CHECK(it != ds.category_to_contiguous.end() && it->second == static_cast<int>(k),
               "category_to_contiguous is not the inverse");
  }
  FUZZ_CHECK(ds.annotations_of_image.size() == ds.images.size(), "annotations_of_image size");
  std::size_t listed = 0;
  for (std::size_t i = 0; i < ds.images.size(); ++i) {
    for (std::size_t a : ds.annotations_of_image[i]) {
      FUZZ_CHECK(a < ds.annotations.size(), "annotation index out of range");
      FUZZ_CHECK(ds.annotations[a].image_id == ds.images[i].id, "annotation under another image");
      ++listed;
    }
  }
  FUZZ_CHECK(listed == ds.annotations.size(), "annotations_of_image misses annotations");
  for (const data::CocoAnnotation& a : ds.annotations) {
    FUZZ_CHECK(ds.category_to_contiguous.count(a.category_id) == 1, "unknown category kept");
    FUZZ_CHECK(std::isfinite(a.x) && std::isfinite(a.y) && std::isfinite(a.w) &&
                   std::isfinite(a.h) && !std::isnan(a.area),
               "non-finite box kept");
  }
}

// Training mode: every box kept lies inside its image with a positive size.
void check_sanitized(const CocoDataset& ds) {
  for (const data::CocoAnnotation& a : ds.annotations) {
    const data::CocoImage& image = ds.images[ds.image_index.at(a.image_id)];
    // x + w may exceed the clipped corner by one rounding of (x2 - x1) + x1.
    const double slack_x = 1e-12 * image.width, slack_y = 1e-12 * image.height;
    FUZZ_CHECK(a.w > 0 && a.h > 0, "degenerate box kept");
    FUZZ_CHECK(a.x >= 0 && a.y >= 0 && a.x + a.w <= image.width + slack_x &&
                   a.y + a.h <= image.height + slack_y,
               "box outside its image kept");
  }
}

const fs::path& image_root() {
  static const fs::path root = [] {
    const fs::path r = scratch_dir() / "images";
    write_bytes(r / "a.jpg", "");
    write_bytes(r / "BloodImage_00000.jpg", "");
    return r;
  }();
  return root;
}

}  // namespace
}  // namespace focaldet::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  focaldet::fuzz::quiet_logging();
  focaldet::fuzz::image_root();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace focaldet::fuzz;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  CocoDataset as_written, clipped;
  CocoReadOptions eval_options;
  eval_options.sanitize_boxes = false;
  const bool ok_written = run_reader("parse_coco (sanitize_boxes=false)", [&] {
    as_written = focaldet::data::parse_coco(text, "fuzz.json", eval_options);
  });
  const bool ok_clipped = run_reader(
      "parse_coco (training)", [&] { clipped = focaldet::data::parse_coco(text, "fuzz.json"); });
  // Sanitising only drops or clips boxes after every check has passed: it cannot change
  // whether a file reads.
  FUZZ_CHECK(ok_written == ok_clipped, "sanitize_boxes changed whether the file reads");
  if (!ok_written) return 0;
  check_indices(as_written);
  check_indices(clipped);
  check_sanitized(clipped);
  FUZZ_CHECK(as_written.num_clipped == 0 && as_written.num_dropped == 0, "eval mode changed boxes");
  FUZZ_CHECK(clipped.annotations.size() + static_cast<std::size_t>(clipped.num_dropped) ==
                 as_written.annotations.size(),
             "kept + dropped != annotations");
  FUZZ_CHECK(clipped.num_clipped <= static_cast<int64_t>(clipped.annotations.size()),
             "more boxes clipped than kept");

  CocoReadOptions train_options;
  train_options.drop_empty_images = true;
  train_options.image_root = image_root().string();
  CocoDataset dropped;
  if (run_reader("parse_coco (drop_empty_images, image_root)",
                 [&] { dropped = focaldet::data::parse_coco(text, "fuzz.json", train_options); })) {
    check_indices(dropped);
    check_sanitized(dropped);
    for (std::size_t i = 0; i < dropped.images.size(); ++i) {
      bool has_box = false;
      for (std::size_t a : dropped.annotations_of_image[i]) {
        has_box = has_box || !dropped.annotations[a].iscrowd;
      }
      FUZZ_CHECK(has_box, "drop_empty_images kept an image without a box");
    }
    FUZZ_CHECK(static_cast<std::size_t>(dropped.num_empty_images_dropped) + dropped.images.size() ==
                   clipped.images.size(),
               "kept + dropped images != images");
  }
  return 0;
}
