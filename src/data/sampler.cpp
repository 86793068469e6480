#include "data/sampler.h"

#include <numeric>
#include <string>
#include <utility>

#include "common/error.h"
#include "data/rng.h"

namespace focaldet::data {

namespace {
// Stream tag so that the shuffle's stream never coincides with the per-image augmentation
// streams drawn from the same run seed.
constexpr uint64_t kShuffleStream = 0x5348554646ULL;  // "SHUFF"
}  // namespace

void validate(const SamplerOptions& options) {
  check(options.batch_size > 0,
        "sampler: batch_size must be positive, got " + std::to_string(options.batch_size));
  check(options.world_size > 0,
        "sampler: world_size must be positive, got " + std::to_string(options.world_size));
  check(options.rank >= 0 && options.rank < options.world_size,
        "sampler: rank " + std::to_string(options.rank) + " outside [0, " +
            std::to_string(options.world_size) + ")");
}

int aspect_group(int width, int height) { return width > height ? 0 : 1; }

std::vector<std::vector<int64_t>> epoch_batches(const std::vector<int>& groups, int64_t epoch,
                                                const SamplerOptions& options) {
  validate(options);
  const int64_t n = static_cast<int64_t>(groups.size());
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  if (options.shuffle) {
    // Fisher-Yates with our own RNG: identical on every platform (see rng.h).
    Rng rng(derive_seed(options.seed, kShuffleStream, static_cast<uint64_t>(epoch)));
    for (int64_t i = n - 1; i > 0; --i) {
      const auto j = static_cast<int64_t>(rng.uniform_int(static_cast<uint64_t>(i + 1)));
      std::swap(order[i], order[j]);
    }
  }

  const int64_t world = options.world_size;
  const int64_t dealt = options.pad_shards && n > 0 ? (n + world - 1) / world * world : n;
  std::vector<int64_t> shard;
  shard.reserve(dealt / world + 1);
  for (int64_t i = options.rank; i < dealt; i += world) shard.push_back(order[i % n]);

  const auto batch_size = static_cast<size_t>(options.batch_size);
  std::vector<std::vector<int64_t>> batches;
  batches.reserve(shard.size() / batch_size + 2);
  if (!options.group_by_aspect_ratio) {
    for (size_t i = 0; i < shard.size(); i += batch_size) {
      const size_t end = std::min(shard.size(), i + batch_size);
      batches.emplace_back(shard.begin() + i, shard.begin() + end);
    }
  } else {
    // Stream through the shard; a group's bucket becomes a batch as soon as it is full.
    std::vector<std::vector<int64_t>> buckets(2);
    for (int64_t idx : shard) {
      auto& bucket = buckets[groups[idx] == 0 ? 0 : 1];
      bucket.push_back(idx);
      if (bucket.size() == batch_size) {
        batches.push_back(std::move(bucket));
        bucket.clear();
      }
    }
    // Leftovers (fewer than batch_size in each bucket), landscape first, as mixed batches.
    std::vector<int64_t> rest = buckets[0];
    rest.insert(rest.end(), buckets[1].begin(), buckets[1].end());
    for (size_t i = 0; i < rest.size(); i += batch_size) {
      const size_t end = std::min(rest.size(), i + batch_size);
      batches.emplace_back(rest.begin() + i, rest.begin() + end);
    }
  }
  if (options.drop_last && !batches.empty() && batches.back().size() < batch_size) {
    batches.pop_back();
  }
  return batches;
}

std::vector<std::vector<int64_t>> epoch_batches(int64_t num_samples, int64_t epoch,
                                                const SamplerOptions& options) {
  check(num_samples >= 0, "sampler: negative sample count");
  return epoch_batches(std::vector<int>(static_cast<size_t>(num_samples), 0), epoch, options);
}

}  // namespace focaldet::data
