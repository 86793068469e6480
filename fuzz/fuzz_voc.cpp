// Fuzz target `voc`: `focaldet convert voc` (data::convert_voc) on a VOC root whose one image's
// annotation xml is the input. convert_voc reads folders, so each run writes the input to
// SCRATCH/voc/Annotations/a.xml (the split list names "a") and converts into SCRATCH/out.
// Checks: what it writes, the strict training reader (read_coco) reads, as voc_convert.h
// promises (convert refuses what the reader would), with the counts and boxes it reported.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "data/coco_dataset.h"
#include "data/voc_convert.h"
#include "fuzz_util.h"

namespace focaldet::fuzz {
namespace {

const fs::path& voc_root() {
  static const fs::path root = [] {
    const fs::path r = scratch_dir() / "voc";
    write_bytes(r / "ImageSets" / "Main" / "train.txt", "a\n");
    // An image by the list's id, and one by a name seeds use in <filename>.
    write_bytes(r / "JPEGImages" / "a.jpg", "");
    write_bytes(r / "JPEGImages" / "BloodImage_00000.jpg", "");
    return r;
  }();
  return root;
}

}  // namespace
}  // namespace focaldet::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  focaldet::fuzz::quiet_logging();
  focaldet::fuzz::voc_root();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace focaldet;
  using namespace focaldet::fuzz;
  write_bytes(voc_root() / "Annotations" / "a.xml",
              std::string_view(reinterpret_cast<const char*>(data), size));
  const fs::path out = scratch_dir() / "out";
  std::error_code ec;
  fs::remove_all(out, ec);

  std::vector<data::VocSplitSummary> summaries;
  if (!run_reader("convert_voc",
                  [&] { summaries = data::convert_voc(voc_root().string(), out.string()); })) {
    FUZZ_CHECK(!fs::exists(out / "instances_train.json", ec), "a failed conversion wrote a file");
    return 0;
  }
  FUZZ_CHECK(summaries.size() == 1 && summaries[0].split == "train", "one split, train");
  const data::VocSplitSummary& s = summaries[0];
  FUZZ_CHECK(s.num_images == 1, "one image");

  data::CocoReadOptions as_written;
  as_written.sanitize_boxes = false;
  data::CocoDataset ds;
  FUZZ_CHECK(run_reader("read_coco", [&] { ds = data::read_coco(s.path, as_written); }),
             "read_coco refuses what convert_voc wrote");
  FUZZ_CHECK(ds.images.size() == 1 && ds.annotations.size() == s.num_annotations,
             "the json does not hold what the summary says");
  std::size_t crowd = 0;
  for (const data::CocoAnnotation& a : ds.annotations) {
    // VOC corners are inclusive pixels: a box is at least 1 x 1, and area = w * h.
    FUZZ_CHECK(a.w >= 1 && a.h >= 1 && a.area == a.w * a.h, "a converted box is degenerate");
    crowd += a.iscrowd ? 1 : 0;
  }
  FUZZ_CHECK(crowd == s.num_difficult, "difficult objects are not the crowd regions");
  // Training's reading (boxes clipped to the image, degenerate ones dropped) takes it too.
  FUZZ_CHECK(run_reader("read_coco (training)", [&] { (void)data::read_coco(s.path); }),
             "read_coco (training) refuses what convert_voc wrote");
  return 0;
}
