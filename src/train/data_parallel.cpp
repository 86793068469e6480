#include "train/data_parallel.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "common/error.h"

namespace focaldet::train {

GlobalStep reduce_step(dist::Distributed& dist, const TrainLosses& losses, int64_t images,
                       bool stop, double elapsed) {
  const loss::LossBreakdown& b = losses.breakdown;
  std::vector<double> v = {losses.cls,
                           losses.box,
                           b.loss_pos,
                           b.loss_neg_hard,
                           b.loss_neg_easy,
                           static_cast<double>(b.num_pos),
                           static_cast<double>(b.num_neg_hard),
                           static_cast<double>(b.num_neg_easy),
                           static_cast<double>(b.num_ignored),
                           static_cast<double>(images),
                           stop ? 1.0 : 0.0,
                           dist.is_main() ? elapsed : 0.0};
  dist.all_reduce_sum(v);
  const double ranks = dist.world_size();
  GlobalStep g;
  g.cls = v[0] / ranks;
  g.box = v[1] / ranks;
  g.breakdown.loss_pos = v[2] / ranks;
  g.breakdown.loss_neg_hard = v[3] / ranks;
  g.breakdown.loss_neg_easy = v[4] / ranks;
  g.breakdown.num_pos = static_cast<int64_t>(v[5]);
  g.breakdown.num_neg_hard = static_cast<int64_t>(v[6]);
  g.breakdown.num_neg_easy = static_cast<int64_t>(v[7]);
  g.breakdown.num_ignored = static_cast<int64_t>(v[8]);
  g.images = static_cast<int64_t>(v[9]);
  g.stop = v[10] > 0;
  g.elapsed = v[11];
  return g;
}

std::vector<eval::Detection> gather_detections(dist::Distributed& dist,
                                               const std::vector<eval::Detection>& local,
                                               const data::CocoDataset& gt) {
  if (!dist.enabled()) return local;
  static_assert(std::is_trivially_copyable_v<eval::Detection>);
  std::string bytes(local.size() * sizeof(eval::Detection), '\0');
  if (!local.empty()) std::memcpy(bytes.data(), local.data(), bytes.size());
  const std::vector<std::string> all = dist.all_gather_bytes(bytes);
  if (!dist.is_main()) return {};
  std::vector<eval::Detection> merged;
  for (const std::string& part : all) {
    const size_t n = part.size() / sizeof(eval::Detection);
    const size_t at = merged.size();
    merged.resize(at + n);
    if (n > 0) std::memcpy(merged.data() + at, part.data(), n * sizeof(eval::Detection));
  }
  // An image's detections all come from one rank, in that rank's order: a stable sort by the
  // image's place in the file restores one process's order.
  std::stable_sort(merged.begin(), merged.end(),
                   [&](const eval::Detection& a, const eval::Detection& b) {
                     return gt.image_index.at(a.image_id) < gt.image_index.at(b.image_id);
                   });
  return merged;
}

namespace {

// FNV-1a over a tensor's bytes: equal tensors hash equal; a difference in any bit shows.
uint64_t hash_bytes(const torch::Tensor& t) {
  const torch::Tensor c = t.detach().to(torch::kCPU).contiguous();  // a GPU tensor's copy
  const auto* p = static_cast<const unsigned char*>(c.data_ptr());
  const size_t n = static_cast<size_t>(c.numel()) * c.element_size();
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ULL;
  return h;
}

}  // namespace

void check_in_sync(dist::Distributed& dist, const torch::nn::Module& model, int64_t iteration) {
  if (!dist.enabled()) return;
  std::vector<std::string> names;
  std::vector<uint64_t> hashes;
  for (const auto& p : model.named_parameters()) {
    names.push_back(p.key());
    hashes.push_back(hash_bytes(p.value()));
  }
  for (const auto& b : model.named_buffers()) {
    names.push_back(b.key());
    hashes.push_back(hash_bytes(b.value()));
  }
  const std::string mine(reinterpret_cast<const char*>(hashes.data()),
                         hashes.size() * sizeof(uint64_t));
  const std::vector<std::string> all = dist.all_gather_bytes(mine);
  for (size_t r = 1; r < all.size(); ++r) {
    if (all[r] == all[0]) continue;
    size_t i = 0;
    while (i < names.size() && all[r].compare(i * 8, 8, all[0], i * 8, 8) == 0) ++i;
    throw Error("iteration " + std::to_string(iteration) + ": rank " + std::to_string(r) +
                " holds other values than rank 0 for '" +
                (i < names.size() ? names[i] : std::string("?")) +
                "': the ranks' models diverged (a bug: please report it)");
  }
}

}  // namespace focaldet::train
