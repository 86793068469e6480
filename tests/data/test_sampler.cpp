// The sampler: reproducible per-epoch order, exact sharding, drop_last and aspect grouping.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>

#include "common/error.h"
#include "data/sampler.h"

namespace focaldet::data {
namespace {

std::vector<int64_t> flatten(const std::vector<std::vector<int64_t>>& batches) {
  std::vector<int64_t> all;
  for (const auto& b : batches) all.insert(all.end(), b.begin(), b.end());
  return all;
}

std::vector<int64_t> iota(int64_t n) {
  std::vector<int64_t> v(n);
  std::iota(v.begin(), v.end(), 0);
  return v;
}

TEST(Sampler, SameSeedSameBatches) {
  SamplerOptions opt;
  opt.batch_size = 4;
  opt.seed = 42;
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    EXPECT_EQ(epoch_batches(50, epoch, opt), epoch_batches(50, epoch, opt));
  }
}

TEST(Sampler, DifferentSeedsAndEpochsDiffer) {
  SamplerOptions a, b;
  a.seed = 1;
  b.seed = 2;
  // Two independent permutations of 50 agree with probability 1/50!.
  EXPECT_NE(epoch_batches(50, 0, a), epoch_batches(50, 0, b));
  EXPECT_NE(epoch_batches(50, 0, a), epoch_batches(50, 1, a));
}

TEST(Sampler, EpochIsAPermutation) {
  SamplerOptions opt;
  opt.batch_size = 3;
  opt.seed = 7;
  const auto batches = epoch_batches(20, 5, opt);
  ASSERT_EQ(batches.size(), 7u);  // 6 full batches of 3, then 2
  EXPECT_EQ(batches.back().size(), 2u);
  auto all = flatten(batches);
  EXPECT_NE(all, iota(20));  // shuffled (identity has probability 1/20!)
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, iota(20));
}

TEST(Sampler, NoShuffleKeepsFileOrder) {
  SamplerOptions opt;
  opt.batch_size = 4;
  opt.shuffle = false;
  EXPECT_EQ(flatten(epoch_batches(10, 3, opt)), iota(10));
}

TEST(Sampler, ShardsCoverEveryImageOncePerEpoch) {
  for (int world : {1, 2, 3, 4, 7}) {
    for (int64_t n : {0, 1, 5, 23, 64}) {
      for (int64_t epoch = 0; epoch < 2; ++epoch) {
        std::vector<int> seen(n, 0);
        size_t min_count = SIZE_MAX, max_count = 0;
        for (int rank = 0; rank < world; ++rank) {
          SamplerOptions opt;
          opt.batch_size = 4;
          opt.seed = 11;
          opt.rank = rank;
          opt.world_size = world;
          const auto mine = flatten(epoch_batches(n, epoch, opt));
          for (int64_t i : mine) ++seen[i];
          min_count = std::min(min_count, mine.size());
          max_count = std::max(max_count, mine.size());
        }
        for (int64_t i = 0; i < n; ++i) {
          EXPECT_EQ(seen[i], 1) << "image " << i << " world " << world << " n " << n;
        }
        EXPECT_LE(max_count - min_count, 1u) << "world " << world << " n " << n;
      }
    }
  }
}

// Data-parallel ranks must take the same number of steps: padded shards are equal in size and
// batch count (with and without aspect grouping), and cover every image, the padding repeating
// the first positions of the epoch's order.
TEST(Sampler, PaddedShardsAreEqualAndCoverEveryImage) {
  for (int world : {1, 2, 3, 4, 7}) {
    for (int64_t n : {1, 5, 23, 64}) {
      for (bool grouped : {false, true}) {
        std::vector<int> groups(n);
        for (int64_t i = 0; i < n; ++i) groups[i] = (i * 7) % 3 == 0 ? 1 : 0;
        std::vector<int> seen(n, 0);
        std::set<size_t> counts, batch_counts;
        for (int rank = 0; rank < world; ++rank) {
          SamplerOptions opt;
          opt.batch_size = 3;
          opt.seed = 5;
          opt.rank = rank;
          opt.world_size = world;
          opt.pad_shards = true;
          opt.group_by_aspect_ratio = grouped;
          const auto batches = epoch_batches(groups, 1, opt);
          const auto mine = flatten(batches);
          for (int64_t i : mine) ++seen[i];
          counts.insert(mine.size());
          batch_counts.insert(batches.size());
        }
        EXPECT_EQ(counts.size(), 1u) << "world " << world << " n " << n;
        EXPECT_EQ(batch_counts.size(), 1u) << "world " << world << " n " << n;
        EXPECT_EQ(*counts.begin(), static_cast<size_t>((n + world - 1) / world));
        int64_t repeated = 0;
        for (int64_t i = 0; i < n; ++i) {
          EXPECT_GE(seen[i], 1) << "image " << i;
          repeated += seen[i] - 1;
        }
        EXPECT_EQ(repeated, (n + world - 1) / world * world - n);
      }
    }
  }
}

TEST(Sampler, ShardsDiffer) {
  SamplerOptions r0, r1;
  r0.world_size = r1.world_size = 2;
  r1.rank = 1;
  EXPECT_NE(epoch_batches(10, 0, r0), epoch_batches(10, 0, r1));
}

TEST(Sampler, DropLastDropsPartialBatch) {
  SamplerOptions opt;
  opt.batch_size = 4;
  opt.drop_last = true;
  const auto batches = epoch_batches(10, 0, opt);
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[0].size(), 4u);
  EXPECT_EQ(batches[1].size(), 4u);
  EXPECT_EQ(epoch_batches(8, 0, opt).size(), 2u);  // nothing partial to drop
}

TEST(Sampler, AspectGroupingKeepsFullBatchesHomogeneous) {
  // 0 = landscape, 1 = portrait, interleaved: i * 7 mod 22 runs over 0..21 once, so 13
  // landscape and 9 portrait.
  std::vector<int> groups;
  for (int i = 0; i < 22; ++i) groups.push_back(i * 7 % 22 < 13 ? 0 : 1);
  const int64_t landscape = std::count(groups.begin(), groups.end(), 0);
  ASSERT_EQ(landscape, 13);
  SamplerOptions opt;
  opt.batch_size = 4;
  opt.seed = 3;
  opt.group_by_aspect_ratio = true;
  const auto batches = epoch_batches(groups, 0, opt);
  // 3 landscape and 2 portrait full batches, then the leftovers 1 + 1 in one mixed batch.
  ASSERT_EQ(batches.size(), 6u);
  for (size_t b = 0; b + 1 < batches.size(); ++b) {
    ASSERT_EQ(batches[b].size(), 4u);
    for (int64_t i : batches[b]) EXPECT_EQ(groups[i], groups[batches[b][0]]) << "batch " << b;
  }
  EXPECT_EQ(batches.back().size(), 2u);
  auto all = flatten(batches);
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, iota(22));
}

TEST(Sampler, AspectGroupOfImage) {
  EXPECT_EQ(aspect_group(640, 480), 0);
  EXPECT_EQ(aspect_group(480, 640), 1);
  EXPECT_EQ(aspect_group(100, 100), 1);
}

TEST(Sampler, RejectsBadOptions) {
  SamplerOptions opt;
  opt.batch_size = 0;
  EXPECT_THROW(epoch_batches(10, 0, opt), Error);
  opt.batch_size = 2;
  opt.world_size = 2;
  opt.rank = 2;
  EXPECT_THROW(epoch_batches(10, 0, opt), Error);
}

}  // namespace
}  // namespace focaldet::data
