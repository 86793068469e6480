#pragma once
// Which images go into which batch, per epoch and per rank. A pure function of (seed, epoch,
// rank, world size, options): the loader's threads only decode what this says, in this order,
// so the same seed gives the same batches whatever the thread count or timing.
#include <cstdint>
#include <vector>

namespace focaldet::data {

struct SamplerOptions {
  int64_t batch_size = 2;  // images per batch on this rank (RetinaNet: 16 over 8 GPUs)
  bool shuffle = true;     // a fresh permutation per epoch, from (seed, epoch); off: file order
  uint64_t seed = 0;       // the run seed
  int rank = 0;            // this process's shard, in [0, world_size)
  int world_size = 1;      // number of shards; together they cover every image once per epoch
  bool drop_last = false;  // drop this rank's final batch when it is not full
  // Repeat the first positions of the epoch's permutation until its length is a multiple of
  // world_size (torch's DistributedSampler): every rank gets the same number of samples, so
  // data-parallel ranks take the same number of steps per epoch.
  bool pad_shards = false;
  // Batch only images of the same orientation (landscape / portrait) together, so little of a
  // padded batch is padding (detectron2's AspectRatioGroupedDataset). Leftovers of both groups
  // at the end of the epoch form mixed final batches.
  bool group_by_aspect_ratio = false;
};

// Throws focaldet::Error for a non-positive batch size or a rank outside [0, world_size).
void validate(const SamplerOptions& options);

// The orientation group of an image for aspect-ratio grouping: 0 when width > height, else 1.
int aspect_group(int width, int height);

// This rank's batches for `epoch`, as indices into [0, groups.size()). `groups` holds one
// aspect_group() per sample; it is read only when options.group_by_aspect_ratio is set.
// Sharding: the epoch's permutation is dealt out round-robin, so rank r gets the positions
// r, r + W, r + 2W, ...; ranks' sample counts differ by at most one, and with drop_last off
// every sample appears in exactly one rank's batches.
std::vector<std::vector<int64_t>> epoch_batches(const std::vector<int>& groups, int64_t epoch,
                                                const SamplerOptions& options);

// The same without grouping information (all samples in one group).
std::vector<std::vector<int64_t>> epoch_batches(int64_t num_samples, int64_t epoch,
                                                const SamplerOptions& options);

}  // namespace focaldet::data
