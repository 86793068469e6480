// The threaded loader on small crafted datasets (PNG images written to a temp dir) and on BCCD:
// box and scale bookkeeping, determinism across thread counts, errors naming the file, shutdown.
#include <gtest/gtest.h>
#include <torch/types.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "common/error.h"
#include "data/coco_dataset.h"
#include "data/loader.h"
#include "support/oracle.h"

namespace focaldet::data {
namespace {

namespace fs = std::filesystem;

struct ImageSpec {
  std::string file_name;
  int width, height;
  std::vector<CocoAnnotation> annotations;  // image_id filled in
  bool write = true;                        // false: leave the file missing
};

// A dataset with categories 7 and 3 (non-contiguous, unordered: training indices 3 -> 0,
// 7 -> 1) and the given images, which are written as noise PNGs under `root`.
std::shared_ptr<CocoDataset> make_dataset(const std::string& root,
                                          const std::vector<ImageSpec>& specs) {
  auto ds = std::make_shared<CocoDataset>();
  ds->path = root + "/instances.json";
  ds->categories = {{7, "seven"}, {3, "three"}};
  ds->category_to_contiguous = {{3, 0}, {7, 1}};
  ds->contiguous_to_category = {3, 7};
  cv::RNG rng(1234);
  int64_t ann_id = 1;
  for (size_t i = 0; i < specs.size(); ++i) {
    const ImageSpec& s = specs[i];
    const int64_t image_id = 100 + static_cast<int64_t>(i);
    ds->images.push_back({image_id, s.file_name, s.width, s.height});
    ds->image_index[image_id] = i;
    ds->annotations_of_image.emplace_back();
    for (CocoAnnotation a : s.annotations) {
      a.id = ann_id++;
      a.image_id = image_id;
      ds->annotations_of_image.back().push_back(ds->annotations.size());
      ds->annotations.push_back(a);
    }
    if (s.write) {
      const fs::path path = fs::path(root) / s.file_name;
      fs::create_directories(path.parent_path());
      cv::Mat image(s.height, s.width, CV_8UC3);
      rng.fill(image, cv::RNG::UNIFORM, 0, 256);
      if (!cv::imwrite(path.string(), image)) throw Error("test: cannot write " + path.string());
    }
  }
  return ds;
}

CocoAnnotation ann(int64_t category, double x, double y, double w, double h, bool crowd = false) {
  CocoAnnotation a;
  a.category_id = category;
  a.x = x;
  a.y = y;
  a.w = w;
  a.h = h;
  a.area = w * h;
  a.iscrowd = crowd;
  return a;
}

std::vector<ImageSpec> small_specs() {
  return {
      {"a.png", 64, 48, {ann(7, 8, 4, 16, 12), ann(3, 30, 20, 10, 20), ann(3, 0, 0, 8, 8, true)}},
      {"sub/b.png", 48, 64, {ann(7, 4, 4, 20, 20)}},
      {"c.png", 32, 32, {}},
      {"d.png", 80, 40, {ann(3, 1.5, 2.5, 30.25, 10), ann(3, 40, 0, 40, 40)}},
      {"e.png", 40, 40, {ann(7, 0, 0, 40, 40)}},
  };
}

// Many images of mixed sizes, for ordering and threading tests.
std::vector<ImageSpec> many_specs(int n) {
  std::vector<ImageSpec> specs;
  for (int i = 0; i < n; ++i) {
    const int w = 40 + 8 * (i % 5), h = 32 + 8 * (i % 3);
    specs.push_back(
        {"img_" + std::to_string(i) + ".png", w, h, {ann(i % 2 ? 7 : 3, i % 7, i % 5, 10, 12)}});
  }
  return specs;
}

class LoaderTest : public ::testing::Test {
 protected:
  void SetUp() override { root_ = test::make_temp_dir("focaldet_loader"); }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  LoaderOptions options() const {
    LoaderOptions o;
    o.image_root = root_;
    o.transform.shorter_sides = {36};
    o.transform.max_size = 1000;
    o.pad_divisor = 32;
    o.sampler.batch_size = 2;
    return o;
  }
  std::vector<Batch> all_batches(Loader& loader, int64_t epoch) {
    loader.start_epoch(epoch);
    std::vector<Batch> out;
    while (auto b = loader.next()) out.push_back(std::move(*b));
    return out;
  }
  std::string root_;
};

// Original COCO box of annotation `a` as x1 y1 x2 y2.
std::array<double, 4> xyxy(const CocoAnnotation& a) { return {a.x, a.y, a.x + a.w, a.y + a.h}; }

// Checks every image of `batches` against `ds`: boxes / scale (after undoing a flip) give the
// original pixels, labels are contiguous, crowd boxes travel apart, sizes are consistent.
void expect_bookkeeping(const std::vector<Batch>& batches, const CocoDataset& ds, int divisor) {
  std::map<int64_t, int> seen;
  for (const Batch& b : batches) {
    ASSERT_EQ(b.images.dim(), 4);
    EXPECT_EQ(b.images.size(0), b.size());
    EXPECT_EQ(b.images.size(2) % divisor, 0);
    EXPECT_EQ(b.images.size(3) % divisor, 0);
    for (int64_t i = 0; i < b.size(); ++i) {
      ++seen[b.image_ids[i]];
      const size_t im = ds.image_index.at(b.image_ids[i]);
      const CocoImage& image = ds.images[im];
      const double s = b.scales[i];
      EXPECT_EQ(b.original_sizes[i], (std::array<int, 2>{image.height, image.width}));
      // Resized sizes are the rounded scaled originals and fit in the padded tensor.
      EXPECT_EQ(b.image_sizes[i][0], static_cast<int>(image.height * s + 0.5));
      EXPECT_EQ(b.image_sizes[i][1], static_cast<int>(image.width * s + 0.5));
      EXPECT_LE(b.image_sizes[i][0], b.images.size(2));
      EXPECT_LE(b.image_sizes[i][1], b.images.size(3));
      const double w = b.image_sizes[i][1];
      std::vector<std::array<double, 4>> want, want_crowd;
      std::vector<int64_t> want_labels;
      for (size_t a : ds.annotations_of_image[im]) {
        const CocoAnnotation& an = ds.annotations[a];
        if (an.iscrowd) {
          want_crowd.push_back(xyxy(an));
        } else {
          want.push_back(xyxy(an));
          want_labels.push_back(an.category_id == 3 ? 0 : 1);
        }
      }
      auto check_boxes = [&](const torch::Tensor& t, const std::vector<std::array<double, 4>>& w4) {
        ASSERT_EQ(t.sizes(), (std::vector<int64_t>{static_cast<int64_t>(w4.size()), 4}));
        auto acc = t.accessor<float, 2>();
        for (size_t k = 0; k < w4.size(); ++k) {
          double x1 = acc[k][0], x2 = acc[k][2];
          if (b.flipped[i]) {
            const double fx1 = x1;
            x1 = w - x2;
            x2 = w - fx1;
          }
          // float32 boxes of at most a few hundred pixels: 1e-4 relative is ample.
          EXPECT_NEAR(x1 / s, w4[k][0], 1e-3) << "image " << b.image_ids[i];
          EXPECT_NEAR(acc[k][1] / s, w4[k][1], 1e-3);
          EXPECT_NEAR(x2 / s, w4[k][2], 1e-3);
          EXPECT_NEAR(acc[k][3] / s, w4[k][3], 1e-3);
        }
      };
      check_boxes(b.boxes[i], want);
      check_boxes(b.crowd_boxes[i], want_crowd);
      ASSERT_EQ(b.labels[i].numel(), static_cast<int64_t>(want_labels.size()));
      EXPECT_EQ(b.labels[i].dtype(), torch::kLong);
      for (size_t k = 0; k < want_labels.size(); ++k) {
        EXPECT_EQ(b.labels[i][k].item<int64_t>(), want_labels[k]);
      }
    }
  }
  for (const CocoImage& image : ds.images) EXPECT_EQ(seen[image.id], 1) << image.file_name;
}

TEST_F(LoaderTest, BoxesOverScaleGiveOriginalPixels) {
  auto ds = make_dataset(root_, small_specs());
  LoaderOptions o = options();
  o.transform.flip_prob = 0;
  Loader loader(ds, o);
  const auto batches = all_batches(loader, 0);
  ASSERT_EQ(batches.size(), 3u);  // 5 images, batch 2
  for (const Batch& b : batches) {
    for (int64_t i = 0; i < b.size(); ++i) EXPECT_FALSE(b.flipped[i]);
  }
  expect_bookkeeping(batches, *ds, 32);
  // a.png is 64x48 to shorter side 36: scale 0.75, 48x36; its first box (8, 4, 24, 16) becomes
  // (6, 3, 18, 12), worked out by hand.
  for (const Batch& b : batches) {
    for (int64_t i = 0; i < b.size(); ++i) {
      if (b.image_ids[i] != 100) continue;
      EXPECT_DOUBLE_EQ(b.scales[i], 0.75);
      EXPECT_EQ(b.image_sizes[i], (std::array<int, 2>{36, 48}));
      EXPECT_TRUE(torch::allclose(b.boxes[i][0], torch::tensor({6.f, 3.f, 18.f, 12.f}),
                                  /*rtol=*/0, /*atol=*/1e-5));
    }
  }
}

TEST_F(LoaderTest, FlippedBoxesMapBackToOriginalPixels) {
  auto ds = make_dataset(root_, small_specs());
  LoaderOptions o = options();
  o.transform.flip_prob = 1;
  o.transform.shorter_sides = {24, 40, 72};  // multi-scale: scales differ per image
  Loader loader(ds, o);
  const auto batches = all_batches(loader, 0);
  for (const Batch& b : batches) {
    for (int64_t i = 0; i < b.size(); ++i) EXPECT_TRUE(b.flipped[i]);
  }
  expect_bookkeeping(batches, *ds, 32);
}

TEST_F(LoaderTest, FlipMovesPixelsWithBoxes) {
  // One 40x20 image, black with a white block over columns 4..9: box (4, 0, 10, 20). Flipped
  // (no resize): the box is (30, 0, 36, 20), and so must the white pixels be.
  auto ds = make_dataset(root_, {{"w.png", 40, 20, {ann(7, 4, 0, 6, 20)}}});
  cv::Mat image(20, 40, CV_8UC3, cv::Scalar(0, 0, 0));
  image(cv::Rect(4, 0, 6, 20)).setTo(cv::Scalar(255, 255, 255));
  ASSERT_TRUE(cv::imwrite(root_ + "/w.png", image));
  LoaderOptions o = options();
  o.transform.shorter_sides = {20};
  o.transform.flip_prob = 1;
  Loader loader(ds, o);
  const auto batches = all_batches(loader, 0);
  ASSERT_EQ(batches.size(), 1u);
  const Batch& b = batches[0];
  EXPECT_TRUE(torch::allclose(b.boxes[0][0], torch::tensor({30.f, 0.f, 36.f, 20.f})));
  const auto red = b.images[0][0][10];  // channel R, row 10
  const float white = (1.f - 0.485f) / 0.229f, black = -0.485f / 0.229f;
  for (int x = 0; x < 40; ++x) {
    EXPECT_NEAR(red[x].item<float>(), x >= 30 && x < 36 ? white : black, 1e-5) << x;
  }
}

TEST_F(LoaderTest, SameSeedSameBatchesWhateverTheThreadCount) {
  auto ds = make_dataset(root_, many_specs(17));
  LoaderOptions o = options();
  o.transform.shorter_sides = {24, 32, 40};
  o.transform.jitter = {0.3, 0.3, 0.3};
  o.sampler.seed = 99;
  o.sampler.batch_size = 3;
  std::vector<std::vector<Batch>> runs;
  for (int workers : {0, 1, 3}) {
    o.num_workers = workers;
    o.prefetch_batches = workers == 3 ? 1 : 4;
    Loader loader(ds, o);
    runs.push_back(all_batches(loader, 2));
  }
  ASSERT_EQ(runs[0].size(), 6u);  // ceil(17 / 3)
  for (size_t r = 1; r < runs.size(); ++r) {
    ASSERT_EQ(runs[r].size(), runs[0].size());
    for (size_t k = 0; k < runs[0].size(); ++k) {
      const Batch &a = runs[0][k], &b = runs[r][k];
      EXPECT_EQ(a.index, static_cast<int64_t>(k));
      EXPECT_EQ(b.index, static_cast<int64_t>(k));
      EXPECT_EQ(a.image_ids, b.image_ids) << "batch " << k;
      EXPECT_EQ(a.flipped, b.flipped);
      EXPECT_EQ(a.scales, b.scales);
      EXPECT_TRUE(torch::equal(a.images, b.images)) << "batch " << k;
      for (int64_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a.boxes[i], b.boxes[i]));
    }
  }
  expect_bookkeeping(runs[2], *ds, 32);
}

TEST_F(LoaderTest, StartingMidEpochGivesTheRemainingBatches) {
  // A resumed run starts the epoch at its next batch: the same batches as if it had gone on.
  auto ds = make_dataset(root_, many_specs(11));
  LoaderOptions o = options();
  o.sampler.batch_size = 2;
  o.num_workers = 2;
  Loader loader(ds, o);
  const std::vector<Batch> all = all_batches(loader, 0);
  loader.start_epoch(0, 3);
  std::vector<Batch> rest;
  while (auto b = loader.next()) rest.push_back(std::move(*b));
  ASSERT_EQ(rest.size(), all.size() - 3);
  for (size_t k = 0; k < rest.size(); ++k) {
    EXPECT_EQ(rest[k].index, all[k + 3].index);
    EXPECT_EQ(rest[k].image_ids, all[k + 3].image_ids);
    EXPECT_TRUE(torch::equal(rest[k].images, all[k + 3].images));
  }
  EXPECT_THROW(loader.start_epoch(0, static_cast<int64_t>(all.size()) + 1), Error);
}

TEST_F(LoaderTest, SeedAndEpochChangeTheOrder) {
  auto ds = make_dataset(root_, many_specs(12));
  auto order = [&](uint64_t seed, int64_t epoch) {
    LoaderOptions o = options();
    o.sampler.seed = seed;
    Loader loader(ds, o);
    std::vector<int64_t> ids;
    for (const Batch& b : all_batches(loader, epoch)) {
      ids.insert(ids.end(), b.image_ids.begin(), b.image_ids.end());
    }
    return ids;
  };
  const auto base = order(5, 0);
  EXPECT_EQ(order(5, 0), base);
  // Two independent permutations of 12 agree with probability 1/12! (~2e-9).
  EXPECT_NE(order(6, 0), base);
  EXPECT_NE(order(5, 1), base);
}

TEST_F(LoaderTest, UndecodableImageIsAnErrorNamingTheFile) {
  auto specs = many_specs(8);
  specs[5].file_name = "broken.png";
  specs[5].write = false;
  auto ds = make_dataset(root_, specs);
  std::ofstream(root_ + "/broken.png") << "this is not a PNG file";
  LoaderOptions o = options();
  o.sampler.shuffle = false;  // broken.png is in batch 2 (images 4 and 5)
  o.num_workers = 2;
  Loader loader(ds, o);
  loader.start_epoch(0);
  ASSERT_TRUE(loader.next().has_value());  // batches before it arrive, in order
  ASSERT_TRUE(loader.next().has_value());
  try {
    loader.next();
    FAIL() << "no exception for an undecodable image";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot decode image"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("broken.png"), std::string::npos) << e.what();
  }
  ASSERT_TRUE(loader.next().has_value());  // the following batch is unaffected
}

TEST_F(LoaderTest, MissingImageIsAnErrorNamingTheFile) {
  auto specs = many_specs(3);
  specs[1].file_name = "gone.png";
  specs[1].write = false;
  auto ds = make_dataset(root_, specs);
  LoaderOptions o = options();
  o.sampler.batch_size = 3;
  Loader loader(ds, o);
  loader.start_epoch(0);
  try {
    loader.next();
    FAIL() << "no exception for a missing image";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not found"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("gone.png"), std::string::npos) << e.what();
  }
}

TEST_F(LoaderTest, ImageOfAnotherSizeThanTheJsonIsAnError) {
  auto specs = many_specs(1);
  auto ds = make_dataset(root_, specs);
  ds->images[0].width += 4;  // the json now disagrees with the file
  LoaderOptions o = options();
  o.num_workers = 0;
  Loader loader(ds, o);
  loader.start_epoch(0);
  try {
    loader.next();
    FAIL() << "no exception for a size mismatch";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("img_0.png"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("decodes to 40x32"), std::string::npos) << e.what();
  }
}

TEST_F(LoaderTest, StoppingEarlyDoesNotDeadlock) {
  auto ds = make_dataset(root_, many_specs(30));
  LoaderOptions o = options();
  o.sampler.batch_size = 1;
  o.num_workers = 3;
  o.prefetch_batches = 1;
  {
    Loader loader(ds, o);
    loader.start_epoch(0);
    ASSERT_TRUE(loader.next().has_value());
  }  // destructor joins workers blocked on the full window
  Loader loader(ds, o);
  loader.start_epoch(0);
  ASSERT_TRUE(loader.next().has_value());
  const auto rest = all_batches(loader, 1);  // abandons epoch 0 midway
  EXPECT_EQ(rest.size(), 30u);
  EXPECT_EQ(rest.front().epoch, 1);
  EXPECT_FALSE(loader.next().has_value());  // stays at the end
}

TEST_F(LoaderTest, NextBeforeStartEpochIsAnError) {
  auto ds = make_dataset(root_, many_specs(2));
  Loader loader(ds, options());
  EXPECT_THROW(loader.next(), Error);
}

TEST_F(LoaderTest, ImagesWithoutBoxesAreKeptUnlessDropped) {
  auto ds = make_dataset(root_, small_specs());  // c.png has no annotation
  LoaderOptions o = options();
  EXPECT_EQ(Loader(ds, o).num_samples(), 5);
  o.drop_images_without_boxes = true;
  Loader loader(ds, o);
  EXPECT_EQ(loader.num_samples(), 4);
  for (const Batch& b : all_batches(loader, 0)) {
    for (int64_t id : b.image_ids) EXPECT_NE(id, 102);
  }
}

TEST_F(LoaderTest, ShardsCoverTheDatasetOnce) {
  auto ds = make_dataset(root_, many_specs(11));
  std::map<int64_t, int> seen;
  for (int rank = 0; rank < 3; ++rank) {
    LoaderOptions o = options();
    o.sampler.rank = rank;
    o.sampler.world_size = 3;
    o.sampler.seed = 8;
    Loader loader(ds, o);
    for (const Batch& b : all_batches(loader, 4)) {
      for (int64_t id : b.image_ids) ++seen[id];
    }
  }
  ASSERT_EQ(seen.size(), 11u);
  for (const auto& [id, n] : seen) EXPECT_EQ(n, 1) << id;
}

}  // namespace
}  // namespace focaldet::data

namespace focaldet::data {
namespace {

// The real thing: BCCD train split through read_coco and the loader at the benchmark's
// settings. Every 640x480 image becomes 512x384 (scale 0.8), already a multiple of 128.
TEST(LoaderBccd, BatchesMatchTheJson) {
  const std::string root = test::source_path("data/bccd");
  CocoReadOptions read;
  read.image_root = root + "/JPEGImages";
  auto ds =
      std::make_shared<const CocoDataset>(read_coco(root + "/coco/instances_train.json", read));
  LoaderOptions o;
  o.image_root = read.image_root;
  o.transform.shorter_sides = {384};
  o.transform.flip_prob = 0.5;
  o.sampler.batch_size = 4;
  o.sampler.seed = 3;
  Loader loader(ds, o);
  EXPECT_EQ(loader.num_samples(), 205);
  EXPECT_EQ(loader.num_batches(0), 52);  // ceil(205 / 4), known before the epoch starts
  loader.start_epoch(0);
  EXPECT_EQ(loader.num_batches(), 52);  // ceil(205 / 4)
  std::vector<Batch> batches;
  for (int k = 0; k < 6; ++k) {
    auto b = loader.next();
    ASSERT_TRUE(b.has_value());
    ASSERT_EQ(b->images.sizes(), (std::vector<int64_t>{4, 3, 384, 512}));
    for (int64_t i = 0; i < b->size(); ++i) {
      EXPECT_DOUBLE_EQ(b->scales[i], 0.8);
      EXPECT_EQ(b->image_sizes[i], (std::array<int, 2>{384, 512}));
      EXPECT_EQ(b->original_sizes[i], (std::array<int, 2>{480, 640}));
    }
    batches.push_back(std::move(*b));
  }
  // BCCD's categories are 1..3 (RBC, WBC, Platelets): training indices 0..2 = id - 1.
  for (const Batch& b : batches) {
    for (int64_t i = 0; i < b.size(); ++i) {
      const size_t im = ds->image_index.at(b.image_ids[i]);
      const auto& anns = ds->annotations_of_image[im];
      ASSERT_EQ(b.boxes[i].size(0), static_cast<int64_t>(anns.size()));
      auto box = b.boxes[i].accessor<float, 2>();
      for (size_t k = 0; k < anns.size(); ++k) {
        const CocoAnnotation& a = ds->annotations[anns[k]];
        const double x1 = b.flipped[i] ? 512 - box[k][2] : box[k][0];
        EXPECT_NEAR(x1 / 0.8, a.x, 1e-3);
        EXPECT_NEAR(box[k][1] / 0.8, a.y, 1e-3);
        EXPECT_NEAR((box[k][2] - box[k][0]) / 0.8, a.w, 1e-3);
        EXPECT_NEAR((box[k][3] - box[k][1]) / 0.8, a.h, 1e-3);
        EXPECT_EQ(b.labels[i][k].item<int64_t>(), a.category_id - 1);
      }
    }
  }
}

}  // namespace
}  // namespace focaldet::data
