#pragma once
// The threaded loader: worker threads decode (OpenCV), transform and collate whole batches ahead
// of the trainer into a bounded window, and the consumer receives them strictly in sampler
// order. Every random choice comes from (seed, epoch, image), so batches are identical for any
// number of workers and any timing.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "data/batch.h"
#include "data/buffer_pool.h"
#include "data/coco_dataset.h"
#include "data/sampler.h"
#include "data/transforms.h"

namespace focaldet::data {

struct LoaderOptions {
  std::string image_root;  // folder the dataset's file_name entries are relative to
  TransformOptions transform;
  SamplerOptions sampler;  // batch size, seed, shuffle, rank / world size, grouping
  // Decoding threads; 0 decodes on the caller's thread in next(). With workers, the Loader sets
  // cv::setNumThreads(1) for the whole process (OpenCV's own pool inside every worker would
  // oversubscribe a small machine).
  int num_workers = 2;
  // Batches decoded ahead of the consumer (at least num_workers are, so every worker has one to
  // do): bounds memory to about (prefetch + 1) batches.
  int prefetch_batches = 4;
  // Batch H and W are rounded up to a multiple of this: the largest FPN stride (P7: 2^7 = 128),
  // so every level's feature map tiles the padded image exactly.
  int pad_divisor = 128;
  // Images with no (non-crowd) box are background-only samples unless this drops them.
  bool drop_images_without_boxes = false;
};

class Loader {
 public:
  // Keeps `dataset` alive; throws focaldet::Error for invalid options or an annotation whose
  // category the dataset does not map.
  Loader(std::shared_ptr<const CocoDataset> dataset, LoaderOptions options);
  ~Loader();  // stops and joins the workers, also in the middle of an epoch
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // start_epoch() and next() are for one consumer thread (the trainer's); the workers are
  // internal. Starts producing `epoch`'s batches (abandoning what is left of the previous one).
  // From batch number `first_batch` on: a run resumed mid-epoch skips what it already did
  // without decoding it.
  void start_epoch(int64_t epoch, int64_t first_batch = 0);

  // The next batch of the current epoch, or std::nullopt when the epoch is done. Rethrows, in
  // sampler order, an exception a worker hit building this batch (an unreadable or undecodable
  // image: focaldet::Error naming the file).
  std::optional<Batch> next();

  int64_t num_samples() const;  // images the sampler draws from (all ranks together)
  int64_t num_batches() const;  // batches in the current epoch on this rank (0 before one)
  // Batches `epoch` will have on this rank, without starting it (e.g. for an LR schedule).
  int64_t num_batches(int64_t epoch) const;
  const CocoDataset& dataset() const { return *dataset_; }
  const LoaderOptions& options() const { return options_; }

  // Builds one batch from sample indices on the calling thread (what a worker does).
  Batch build_batch(const std::vector<int64_t>& indices, int64_t epoch, int64_t index) const;

 private:
  struct Sample;    // one image's file and targets in original pixels
  struct Pipeline;  // the running epoch: batches, worker threads, the reorder window
  void stop();

  std::shared_ptr<const CocoDataset> dataset_;
  LoaderOptions options_;
  std::vector<Sample> samples_;
  std::vector<int> groups_;           // aspect_group() per sample
  std::shared_ptr<BufferPool> pool_;  // memory of the batch image tensors
  std::unique_ptr<Pipeline> pipeline_;
};

}  // namespace focaldet::data
