#include "data/loader.h"

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <filesystem>
#include <map>
#include <mutex>
#include <opencv2/core/utility.hpp>
#include <opencv2/imgcodecs.hpp>
#include <thread>
#include <utility>

#include "common/error.h"
#include "data/collate.h"
#include "data/rng.h"

namespace focaldet::data {

namespace {
constexpr uint64_t kAugmentStream = 0x4155474dULL;  // "AUGM", see sampler.cpp's kShuffleStream
}  // namespace

struct Loader::Sample {
  std::string path;  // image_root / file_name
  int64_t image_id = 0;
  int width = 0, height = 0;  // as the json states them
  std::vector<Box> boxes;     // original pixels
  std::vector<int64_t> labels;
  std::vector<Box> crowd_boxes;
};

// One epoch in flight. Workers claim batch numbers in order, build them outside the lock and
// park them in `ready`; the consumer takes them out strictly by number, so delivery order is the
// sampler's whatever the timing. A worker claims batch k only while k < delivered + window.
struct Loader::Pipeline {
  int64_t epoch = 0;
  std::vector<std::vector<int64_t>> batches;
  int64_t window = 1;

  std::mutex mutex;
  std::condition_variable work_cv;   // a worker may claim (window moved, or stopping)
  std::condition_variable ready_cv;  // a batch was parked
  int64_t next_claim = 0;
  int64_t next_deliver = 0;
  bool stopping = false;
  struct Slot {
    std::optional<Batch> batch;
    std::exception_ptr error;
  };
  std::map<int64_t, Slot> ready;
  std::vector<std::thread> threads;
};

Loader::Loader(std::shared_ptr<const CocoDataset> dataset, LoaderOptions options)
    : dataset_(std::move(dataset)), options_(std::move(options)) {
  check(dataset_ != nullptr, "loader: no dataset");
  validate(options_.transform);
  validate(options_.sampler);
  check(options_.num_workers >= 0, "loader: num_workers must be >= 0");
  check(options_.prefetch_batches >= 1, "loader: prefetch_batches must be >= 1");
  check(options_.pad_divisor >= 1, "loader: pad_divisor must be >= 1");
  const CocoDataset& ds = *dataset_;
  check(ds.annotations_of_image.size() == ds.images.size(),
        "loader: dataset '" + ds.path + "' has no per-image annotation index");

  const std::filesystem::path root(options_.image_root);
  samples_.reserve(ds.images.size());
  for (size_t i = 0; i < ds.images.size(); ++i) {
    const CocoImage& im = ds.images[i];
    Sample s;
    s.path = (root / im.file_name).string();
    s.image_id = im.id;
    s.width = im.width;
    s.height = im.height;
    for (size_t a : ds.annotations_of_image[i]) {
      const CocoAnnotation& ann = ds.annotations[a];
      const Box box{static_cast<float>(ann.x), static_cast<float>(ann.y),
                    static_cast<float>(ann.x + ann.w), static_cast<float>(ann.y + ann.h)};
      if (ann.iscrowd) {
        s.crowd_boxes.push_back(box);
        continue;
      }
      const auto it = ds.category_to_contiguous.find(ann.category_id);
      check(it != ds.category_to_contiguous.end(),
            ds.path + ": annotation " + std::to_string(ann.id) + " has unknown category " +
                std::to_string(ann.category_id));
      s.boxes.push_back(box);
      s.labels.push_back(it->second);
    }
    if (options_.drop_images_without_boxes && s.boxes.empty()) continue;
    groups_.push_back(aspect_group(s.width, s.height));
    samples_.push_back(std::move(s));
  }

  // Enough idle blocks for every batch that can be in flight at once: the window, one per worker
  // and the one the consumer holds.
  const auto window =
      static_cast<size_t>(std::max(options_.prefetch_batches, options_.num_workers));
  pool_ = std::make_shared<BufferPool>(window + options_.num_workers + 2);

  // OpenCV would otherwise run its own thread pool inside every worker's cv::resize, on top of
  // our workers: oversubscription on a small machine. The setting is process-wide.
  if (options_.num_workers > 0) cv::setNumThreads(1);
}

Loader::~Loader() { stop(); }

int64_t Loader::num_samples() const { return static_cast<int64_t>(samples_.size()); }

int64_t Loader::num_batches() const {
  return pipeline_ ? static_cast<int64_t>(pipeline_->batches.size()) : 0;
}

int64_t Loader::num_batches(int64_t epoch) const {
  return static_cast<int64_t>(epoch_batches(groups_, epoch, options_.sampler).size());
}

Batch Loader::build_batch(const std::vector<int64_t>& indices, int64_t epoch, int64_t index) const {
  std::vector<TransformedSample> transformed;
  transformed.reserve(indices.size());
  for (int64_t idx : indices) {
    const Sample& s = samples_.at(static_cast<size_t>(idx));
    const cv::Mat bgr = cv::imread(s.path, cv::IMREAD_COLOR);
    if (bgr.empty()) {
      const bool exists = std::filesystem::exists(s.path);
      throw Error((exists ? "cannot decode image '" : "image file not found: '") + s.path +
                  "' (image id " + std::to_string(s.image_id) + ")");
    }
    // Boxes are in the json's pixel frame; a decoded image of another size (wrong json, or an
    // EXIF rotation) would silently misplace every box.
    if (s.width > 0 && s.height > 0 && (bgr.cols != s.width || bgr.rows != s.height)) {
      throw Error("image '" + s.path + "' decodes to " + std::to_string(bgr.cols) + "x" +
                  std::to_string(bgr.rows) + " but the json gives " + std::to_string(s.width) +
                  "x" + std::to_string(s.height) + " (image id " + std::to_string(s.image_id) +
                  ")");
    }
    const TransformParams params = draw_transform_params(
        options_.transform, derive_seed(options_.sampler.seed, kAugmentStream,
                                        static_cast<uint64_t>(epoch), static_cast<uint64_t>(idx)));
    TransformedSample t =
        transform_image(bgr, params, options_.transform, s.boxes, s.labels, s.crowd_boxes);
    t.image_id = s.image_id;
    transformed.push_back(std::move(t));
  }
  Batch batch = collate(transformed, options_.transform, options_.pad_divisor, pool_.get());
  batch.epoch = epoch;
  batch.index = index;
  return batch;
}

void Loader::stop() {
  if (!pipeline_) return;
  {
    std::lock_guard<std::mutex> lock(pipeline_->mutex);
    pipeline_->stopping = true;
  }
  pipeline_->work_cv.notify_all();
  for (std::thread& t : pipeline_->threads) t.join();
  pipeline_.reset();
}

void Loader::start_epoch(int64_t epoch, int64_t first_batch) {
  stop();
  auto p = std::make_unique<Pipeline>();
  p->epoch = epoch;
  p->batches = epoch_batches(groups_, epoch, options_.sampler);
  check(first_batch >= 0 && first_batch <= static_cast<int64_t>(p->batches.size()),
        "loader: first batch " + std::to_string(first_batch) + " outside epoch " +
            std::to_string(epoch) + " of " + std::to_string(p->batches.size()) + " batches");
  p->next_claim = p->next_deliver = first_batch;
  p->window = std::max<int64_t>(options_.prefetch_batches, options_.num_workers);
  Pipeline* pp = p.get();
  pipeline_ = std::move(p);
  const auto total = static_cast<int64_t>(pp->batches.size());
  for (int w = 0; w < options_.num_workers; ++w) {
    pp->threads.emplace_back([this, pp, total] {
      std::unique_lock<std::mutex> lock(pp->mutex);
      while (true) {
        pp->work_cv.wait(lock, [&] {
          return pp->stopping || pp->next_claim >= total ||
                 pp->next_claim < pp->next_deliver + pp->window;
        });
        if (pp->stopping || pp->next_claim >= total) return;
        const int64_t k = pp->next_claim++;
        lock.unlock();
        Pipeline::Slot slot;
        try {
          slot.batch = build_batch(pp->batches[k], pp->epoch, k);
        } catch (...) {
          slot.error = std::current_exception();
        }
        lock.lock();
        pp->ready.emplace(k, std::move(slot));
        pp->ready_cv.notify_all();
      }
    });
  }
}

std::optional<Batch> Loader::next() {
  check(pipeline_ != nullptr, "loader: next() called before start_epoch()");
  Pipeline& p = *pipeline_;
  const auto total = static_cast<int64_t>(p.batches.size());
  if (p.next_deliver >= total) return std::nullopt;  // only this thread writes next_deliver
  if (options_.num_workers == 0) {
    const int64_t k = p.next_deliver++;
    return build_batch(p.batches[k], p.epoch, k);
  }
  Pipeline::Slot slot;
  {
    std::unique_lock<std::mutex> lock(p.mutex);
    p.ready_cv.wait(lock, [&] { return p.ready.count(p.next_deliver) > 0; });
    auto it = p.ready.find(p.next_deliver);
    slot = std::move(it->second);
    p.ready.erase(it);
    ++p.next_deliver;
  }
  p.work_cv.notify_all();
  if (slot.error) std::rethrow_exception(slot.error);
  return std::move(slot.batch);
}

}  // namespace focaldet::data
