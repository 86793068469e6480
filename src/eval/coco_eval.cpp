#include "eval/coco_eval.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <limits>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <unordered_map>

#include "common/error.h"

namespace focaldet::eval {

const std::array<const char*, 12> kStatNames = {"AP",  "AP50", "AP75",  "APs", "APm", "APl",
                                                "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"};

namespace {

constexpr int T = kNumIouThresholds;
constexpr int R = kNumRecallPoints;
constexpr int A = kNumAreaRanges;
constexpr int M = kNumMaxDets;
constexpr int kMaxDetLast = kMaxDets[M - 1];
// np.spacing(1): the distance from 1.0 to the next double.
constexpr double kEps = std::numeric_limits<double>::epsilon();

// np.linspace(start, stop, num): y = arange(num) * ((stop - start) / (num - 1)) + start, then
// y[-1] = stop. Two roundings per element, as numpy does them.
template <std::size_t N>
std::array<double, N> linspace(double start, double stop) {
  std::array<double, N> y{};
  const double step = (stop - start) / static_cast<double>(N - 1);
  for (std::size_t i = 0; i < N; ++i) {
    const double scaled = static_cast<double>(i) * step;
    y[i] = scaled + start;
  }
  y[N - 1] = stop;
  return y;
}

// numpy's pairwise summation (pairwise_sum in umath/loops_utils.h), which np.mean uses on a
// contiguous float64 array; reproduced so the means are the same doubles pycocotools gets. It
// reads the n elements strictly in order, so they come from `next()` one at a time and the
// array np.mean sees never has to exist.
template <typename Next>
double pairwise_sum(Next& next, std::size_t n) {
  if (n < 8) {
    double res = -0.0;
    for (std::size_t i = 0; i < n; ++i) res += next();
    return res;
  }
  if (n <= 128) {
    double r[8];
    for (int j = 0; j < 8; ++j) r[j] = next();
    std::size_t i = 8;
    for (; i < n - (n % 8); i += 8) {
      for (int j = 0; j < 8; ++j) r[j] += next();
    }
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += next();
    return res;
  }
  std::size_t n2 = n / 2;
  n2 -= n2 % 8;
  const double left = pairwise_sum(next, n2);
  return left + pairwise_sum(next, n - n2);
}

// np.mean(s[s > -1]) of the n values > -1 that `next()` gives in C order, or -1 when there are
// none (summarize()'s rule).
template <typename Next>
double mean_of_measured(Next& next, std::size_t n) {
  if (n == 0) return -1.0;
  return (0.0 + pairwise_sum(next, n)) / static_cast<double>(n);
}

// id -> position among the sorted unique ids (pycocotools sorts imgIds and catIds).
class IdIndex {
 public:
  explicit IdIndex(std::vector<int64_t> ids) : sorted_(std::move(ids)) {
    std::sort(sorted_.begin(), sorted_.end());
    sorted_.erase(std::unique(sorted_.begin(), sorted_.end()), sorted_.end());
    if (sorted_.empty()) return;
    base_ = sorted_.front();
    const uint64_t span = static_cast<uint64_t>(sorted_.back()) - static_cast<uint64_t>(base_);
    if (span < 4 * sorted_.size() + 1024) {  // dense ids (the usual case): a flat table
      dense_.assign(span + 1, -1);
      for (std::size_t i = 0; i < sorted_.size(); ++i) dense_[sorted_[i] - base_] = int32_t(i);
    } else {
      for (std::size_t i = 0; i < sorted_.size(); ++i) sparse_.emplace(sorted_[i], int32_t(i));
    }
  }
  // Position of `id`, or -1 when it is not there.
  int32_t find(int64_t id) const {
    if (!dense_.empty()) {
      if (id < base_) return -1;
      const uint64_t off = static_cast<uint64_t>(id) - static_cast<uint64_t>(base_);
      return off < dense_.size() ? dense_[off] : -1;
    }
    const auto it = sparse_.find(id);
    return it == sparse_.end() ? -1 : it->second;
  }
  const std::vector<int64_t>& ids() const { return sorted_; }
  int32_t size() const { return static_cast<int32_t>(sorted_.size()); }

 private:
  std::vector<int64_t> sorted_;
  int64_t base_ = 0;
  std::vector<int32_t> dense_;
  std::unordered_map<int64_t, int32_t> sparse_;
};

// Detections and gt boxes copied into flat arrays sorted by (category, image), in input (file)
// order within a pair: a category's boxes are contiguous and in image order, so a worker
// streams through memory instead of chasing indices into the input. Nothing is indexed by
// category x image: pycocotools' evalImgs has an entry per pair, but only the pairs with a box
// can hold anything, and those are found by walking the sorted boxes.
struct DetBox {
  double x, y, w, h, score;
  uint32_t index;  // position in the input list: ties in score keep this order
  int32_t image;   // position among the sorted image ids
};
struct GtBox {
  double x, y, w, h, area;
  int64_t id;
  int32_t image;  // position among the sorted image ids
  bool crowd;
};

// gt['_ignore'] is false: not crowd and the area within area range a.
inline bool is_regular(const GtBox& g, int a) {
  const auto& range = area_ranges()[a];
  return !(g.crowd || g.area < range[0] || g.area > range[1]);
}

// make(n) for the items n with category[n] >= 0, ordered by (category, image) and by n within a
// pair: a stable counting sort by category over the items visited in image order (n order when
// that already is image order, as in files written image by image; otherwise after a stable
// counting sort by image), so time and memory are O(items + images + categories). Fills
// `category_offsets` (K + 1): a category's items are offsets[k] .. offsets[k + 1] of the result.
template <typename Out, typename Make>
std::vector<Out> group_by_category_image(const std::vector<int32_t>& category,
                                         const std::vector<int32_t>& image, int32_t K, int32_t I,
                                         std::vector<uint32_t>& category_offsets, Make make) {
  category_offsets.assign(std::size_t(K) + 1, 0);
  bool image_order = true;
  int32_t last_image = -1;
  for (std::size_t n = 0; n < category.size(); ++n) {
    if (category[n] < 0) continue;
    ++category_offsets[category[n] + 1];
    image_order = image_order && image[n] >= last_image;
    last_image = image[n];
  }
  for (int32_t k = 0; k < K; ++k) category_offsets[k + 1] += category_offsets[k];

  std::vector<Out> out(category_offsets.back());
  std::vector<uint32_t> cursor(category_offsets.begin(), category_offsets.end() - 1);
  auto place = [&](uint32_t n) { out[cursor[category[n]]++] = make(n); };
  if (image_order) {
    for (std::size_t n = 0; n < category.size(); ++n) {
      if (category[n] >= 0) place(static_cast<uint32_t>(n));
    }
    return out;
  }
  std::vector<uint32_t> by_image_offsets(std::size_t(I) + 1, 0);
  for (std::size_t n = 0; n < category.size(); ++n) {
    if (category[n] >= 0) ++by_image_offsets[image[n] + 1];
  }
  for (int32_t i = 0; i < I; ++i) by_image_offsets[i + 1] += by_image_offsets[i];
  std::vector<uint32_t> by_image(by_image_offsets.back());
  for (std::size_t n = 0; n < category.size(); ++n) {
    if (category[n] >= 0) by_image[by_image_offsets[image[n]]++] = static_cast<uint32_t>(n);
  }
  by_image_offsets = {};
  for (const uint32_t n : by_image) place(n);
  return out;
}

// One kept detection of a category (after the per-image sort and maxDets cut), with its
// outcome per area range: bit t of tp[a] / fp[a] says it is a true / false positive at IoU
// threshold t; neither bit set means ignored.
struct KeptDet {
  double score;
  uint32_t rank;  // position in its image's sorted list (for the maxDets 1 / 10 cuts)
  uint16_t tp[A];
  uint16_t fp[A];
};

// A category with regular ground truth in at least one area range: the only ones accumulate
// writes anything for (pycocotools leaves the others at -1).
struct Measured {
  int32_t category;
  int64_t npig[A];  // regular gt per area range
};

struct Inputs {
  std::vector<uint32_t> gt_offsets, det_offsets;  // K + 1: a category's boxes
  std::vector<GtBox> gts;
  std::vector<DetBox> dets;        // each image's run sorted in place by the worker that owns it
  std::vector<Measured> measured;  // ascending category
};

// Per-thread scratch, grown as needed and reused, so the per-image loop does not allocate
// once it has seen its largest image.
struct Scratch {
  std::vector<double> ious;        // [D, G], gt in file order
  std::vector<uint32_t> gt_order;  // per area range: regular gt first (stable)
  std::vector<uint8_t> gt_ignore;  // by sorted position
  std::vector<uint8_t> gt_crowd;   // by sorted position
  std::vector<uint8_t> gt_taken;   // by sorted position, per threshold
  std::vector<KeptDet> kept;       // the category's kept detections, image order
  std::vector<uint32_t> kept_order;
  std::vector<uint32_t> outcome;  // [A, n] for one maxDets: tp bits | fp bits << 16
  std::vector<double> rc, pr;     // at each true positive
};

// maskApi.c bbIou: IoU of a detection with a gt box, intersection / detection area for crowd
// gt. Doubles, same operation order (x + w before fmin), so results are bit-identical.
inline double bb_iou(const DetBox& d, const GtBox& g) {
  const double w = std::fmin(d.w + d.x, g.w + g.x) - std::fmax(d.x, g.x);
  if (w <= 0) return 0.0;
  const double h = std::fmin(d.h + d.y, g.h + g.y) - std::fmax(d.y, g.y);
  if (h <= 0) return 0.0;
  const double inter = w * h;
  const double det_area = d.w * d.h;
  const double union_area = g.crowd ? det_area : det_area + g.w * g.h - inter;
  return inter / union_area;
}

// COCOeval.evaluateImg for one image and category, all area ranges and thresholds at once.
// gts[0 .. G) and dets[0 .. num_dets) are the image's boxes of the category, in file order.
// Appends the kept detections (sorted, cut to maxDets[-1]) to s.kept.
void evaluate_image(const GtBox* gts, std::size_t G, DetBox* dets, std::size_t num_dets,
                    Scratch& s) {
  const auto& thr = iou_thresholds();
  const auto& areas = area_ranges();

  // Highest score first, stable (np.argsort(-score, kind='mergesort')): ties keep file order,
  // which is the order of `index`, so sorting by (score desc, index) is the same.
  std::sort(dets, dets + num_dets, [](const DetBox& a, const DetBox& b) {
    return a.score > b.score || (a.score == b.score && a.index < b.index);
  });
  const std::size_t D = std::min<std::size_t>(num_dets, kMaxDetLast);

  s.ious.resize(D * G);
  for (std::size_t d = 0; d < D; ++d) {
    for (std::size_t g = 0; g < G; ++g) s.ious[d * G + g] = bb_iou(dets[d], gts[g]);
  }

  const std::size_t first = s.kept.size();
  for (std::size_t d = 0; d < D; ++d) {
    KeptDet k{};
    k.score = dets[d].score;
    k.rank = static_cast<uint32_t>(d);
    s.kept.push_back(k);
  }
  KeptDet* kept = s.kept.data() + first;

  s.gt_order.resize(G);
  s.gt_ignore.resize(G);
  s.gt_crowd.resize(G);
  s.gt_taken.resize(G);
  constexpr uint16_t kAllThresholds = (1u << T) - 1;
  for (int a = 0; a < A; ++a) {
    const double lo = areas[a][0], hi = areas[a][1];
    // gt['_ignore'] = iscrowd or area outside [lo, hi]; then regular first, stable.
    std::size_t n_regular = 0;
    for (std::size_t g = 0; g < G; ++g) {
      if (is_regular(gts[g], a)) s.gt_order[n_regular++] = g;
    }
    std::size_t pos = n_regular;
    for (std::size_t g = 0; g < G; ++g) {
      if (!is_regular(gts[g], a)) s.gt_order[pos++] = g;
    }
    for (std::size_t p = 0; p < G; ++p) {
      s.gt_ignore[p] = p >= n_regular;
      s.gt_crowd[p] = gts[s.gt_order[p]].crowd;
    }

    if (G == 0) {
      // Nothing to match: every detection is a false positive unless its area (w * h) is
      // outside the range.
      for (std::size_t d = 0; d < D; ++d) {
        const double det_area = dets[d].w * dets[d].h;
        if (!(det_area < lo || det_area > hi)) kept[d].fp[a] = kAllThresholds;
      }
      continue;
    }
    for (int t = 0; t < T; ++t) {
      std::fill(s.gt_taken.begin(), s.gt_taken.end(), 0);
      const uint16_t bit = uint16_t(1u << t);
      for (std::size_t d = 0; d < D; ++d) {
        // Greedy match: best IoU >= threshold (pycocotools skips only IoU < min(t, 1 - 1e-10),
        // so an IoU equal to the threshold matches); stop at the ignored gt once matched to a
        // regular one; a taken regular gt is skipped, a crowd gt absorbs any number.
        double best = std::min(thr[t], 1 - 1e-10);
        std::ptrdiff_t m = -1;
        const double* row = s.ious.data() + d * G;
        for (std::size_t p = 0; p < G; ++p) {
          if (s.gt_taken[p] && !s.gt_crowd[p]) continue;
          if (m > -1 && !s.gt_ignore[m] && s.gt_ignore[p]) break;
          const double iou = row[s.gt_order[p]];
          if (iou < best) continue;
          best = iou;
          m = static_cast<std::ptrdiff_t>(p);
        }
        bool ignored = false;
        // dtMatches holds the gt's id, and pycocotools tests it for truth: a match to a gt
        // whose id is 0 counts as no match. Kept for parity.
        bool matched = false;
        if (m > -1) {
          s.gt_taken[m] = 1;
          ignored = s.gt_ignore[m];
          matched = gts[s.gt_order[m]].id != 0;
        }
        if (!matched) {
          // Unmatched detections outside the area range (area = w * h) are ignored.
          const double det_area = dets[d].w * dets[d].h;
          if (det_area < lo || det_area > hi) ignored = true;
        }
        if (!ignored) {
          if (matched) {
            kept[d].tp[a] |= bit;
          } else {
            kept[d].fp[a] |= bit;
          }
        }
      }
    }
  }
}

// Where curve (t, a, m) of measured category `slot` starts in out.curves.run_value / run_end.
inline uint64_t curve_start(const PrecisionRecall& c, std::size_t slot, int t, int a, int m) {
  const auto& runs = c.runs_per_curve[slot];
  uint64_t start = c.run_base[slot];
  for (int b = 0; b < a; ++b) start += uint64_t(T) * M * runs[b];
  return start + (uint64_t(t) * M + m) * runs[a];
}

// Runs per curve of area range a: precision over the recall points changes only at a true
// positive's position and where recall runs out (to 0), so a curve has at most
// min(101, true positives + 1) runs, and true positives <= regular gt.
inline uint8_t runs_for(int64_t npig) {
  return npig == 0 ? 0 : static_cast<uint8_t>(std::min<int64_t>(R, npig + 1));
}

// COCOeval.accumulate for one category: the category's kept detections over all images,
// sorted stably by score, cut per image to each maxDets, give precision at 101 recall points.
//
// pycocotools builds rc and pr at every position of the sorted list, takes the running max
// from the right, and reads it at np.searchsorted(rc, recThrs, side='left'). Only the
// positions of true positives matter for that: rc rises only there, so searchsorted-left
// always lands on one (or on position 0 with rc = 0, whose envelope is the max over all), and
// after a true positive pr only falls (fp) or repeats (ignored) until the next one, so the max
// over a suffix is the max over its true positives. Working on true positives alone gives the
// same doubles (tp and fp are the same counts, divided the same way) with far fewer divisions.
void accumulate_category(std::size_t slot, const int64_t npig[A], Scratch& s,
                         PrecisionRecall& out) {
  const auto& rec_thr = recall_thresholds();
  const std::size_t n = s.kept.size();
  // np.argsort(-scores, kind='mergesort') over the concatenation in image order.
  s.kept_order.resize(n);
  std::iota(s.kept_order.begin(), s.kept_order.end(), 0u);
  const KeptDet* kept = s.kept.data();
  std::sort(s.kept_order.begin(), s.kept_order.end(), [kept](uint32_t a, uint32_t b) {
    return kept[a].score > kept[b].score || (kept[a].score == kept[b].score && a < b);
  });
  s.outcome.resize(n * A);
  s.rc.resize(n + 1);
  s.pr.resize(n + 1);
  for (int m = 0; m < M; ++m) {
    // Cutting each image's list to maxDet keeps the relative order, so the stable order of
    // the cut concatenation is the full order filtered. outcome[a][j]: tp bits | fp bits << 16.
    const uint32_t max_det = static_cast<uint32_t>(kMaxDets[m]);
    std::size_t nd = 0;
    for (std::size_t j = 0; j < n; ++j) {
      const KeptDet& e = kept[s.kept_order[j]];
      if (e.rank >= max_det) continue;
      for (int a = 0; a < A; ++a) s.outcome[a * n + nd] = e.tp[a] | (uint32_t(e.fp[a]) << 16);
      ++nd;
    }
    for (int a = 0; a < A; ++a) {
      if (npig[a] == 0) continue;  // no regular gt: precision and recall stay -1
      const double num_gt = static_cast<double>(npig[a]);
      const uint32_t* outcome = s.outcome.data() + a * n;
      const uint8_t capacity = out.runs_per_curve[slot][a];
      for (int t = 0; t < T; ++t) {
        // At the i-th true positive: rc = tp / npig, pr = tp / (fp + tp + np.spacing(1)).
        std::size_t num_tp = 0;
        uint32_t fp = 0;
        for (std::size_t j = 0; j < nd; ++j) {
          const uint32_t o = outcome[j];
          fp += (o >> (16 + t)) & 1u;
          if ((o >> t) & 1u) {
            ++num_tp;
            const double tp_d = static_cast<double>(num_tp);
            s.rc[num_tp - 1] = tp_d / num_gt;
            s.pr[num_tp - 1] = tp_d / (static_cast<double>(fp) + tp_d + kEps);
          }
        }
        // rc[-1] over the whole list: the last true positive's rc, or 0 (also when nd = 0).
        out.recall[((slot * T + t) * A + a) * M + m] = num_tp ? s.rc[num_tp - 1] : 0.0;
        // Monotone envelope: the running max from the right.
        for (std::size_t j = num_tp; j-- > 1;) {
          if (s.pr[j] > s.pr[j - 1]) s.pr[j - 1] = s.pr[j];
        }
        // searchsorted left: first true positive with rc >= r; precision 0 from the first
        // recall point past the highest recall reached. Stored as runs of equal values (the
        // same doubles, compared bit for bit).
        double* value = out.run_value.data() + curve_start(out, slot, t, a, m);
        uint8_t* end = out.run_end.data() + curve_start(out, slot, t, a, m);
        std::size_t runs = 0;
        std::size_t j = 0;
        for (int r = 0; r < R; ++r) {
          while (j < num_tp && s.rc[j] < rec_thr[r]) ++j;
          const double q = j < num_tp ? s.pr[j] : 0.0;
          if (runs == 0 || std::memcmp(&q, &value[runs - 1], sizeof q) != 0) {
            if (runs == capacity) throw std::logic_error("evaluate: precision curve overflow");
            value[runs++] = q;
          }
          end[runs - 1] = static_cast<uint8_t>(r + 1);
        }
      }
    }
  }
}

// Sorts gt and detections by (category, image), counting in `out` what is left out, and finds
// the categories with regular gt; throws for a detection whose image is not in the ground
// truth, or that holds a non-finite number.
Inputs group_inputs(const data::CocoDataset& gt, const std::vector<Detection>& detections,
                    const IdIndex& images, const IdIndex& categories, CocoEvalResult& out) {
  const int32_t I = images.size(), K = categories.size();
  Inputs in;
  {
    // Ground truth outside the listed images and categories is not evaluated (getAnnIds
    // filters by imgIds and catIds).
    std::vector<int32_t> category(gt.annotations.size()), image(gt.annotations.size());
    for (std::size_t n = 0; n < gt.annotations.size(); ++n) {
      const auto& ann = gt.annotations[n];
      image[n] = images.find(ann.image_id);
      category[n] = image[n] < 0 ? -1 : categories.find(ann.category_id);
      out.annotations_left_out += category[n] < 0;
    }
    in.gts = group_by_category_image<GtBox>(
        category, image, K, I, in.gt_offsets, [&gt, &image](uint32_t n) {
          const auto& a = gt.annotations[n];
          return GtBox{a.x, a.y, a.w, a.h, a.area, a.id, image[n], a.iscrowd};
        });
  }
  {
    std::vector<int32_t> category(detections.size()), image(detections.size());
    for (std::size_t n = 0; n < detections.size(); ++n) {
      const Detection& d = detections[n];
      image[n] = images.find(d.image_id);
      if (image[n] < 0) {
        throw Error("detection " + std::to_string(n) + ": image_id " + std::to_string(d.image_id) +
                    " is not an image of the ground truth" +
                    (gt.path.empty() ? std::string() : " (" + gt.path + ")"));
      }
      if (!(std::isfinite(d.x) && std::isfinite(d.y) && std::isfinite(d.w) && std::isfinite(d.h) &&
            std::isfinite(d.score))) {
        throw Error("detection " + std::to_string(n) + ": bbox or score is not a finite number");
      }
      // getAnnIds(catIds=the ground truth's) never returns it: not evaluated, no error.
      category[n] = categories.find(d.category_id);
      out.detections_left_out += category[n] < 0;
    }
    in.dets = group_by_category_image<DetBox>(
        category, image, K, I, in.det_offsets, [&detections, &image](uint32_t n) {
          const Detection& d = detections[n];
          return DetBox{d.x, d.y, d.w, d.h, d.score, n, image[n]};
        });
  }
  for (int32_t k = 0; k < K; ++k) {
    Measured c{k, {0, 0, 0, 0}};
    bool any = false;
    for (uint32_t g = in.gt_offsets[k]; g < in.gt_offsets[k + 1]; ++g) {
      for (int a = 0; a < A; ++a) {
        const bool regular = is_regular(in.gts[g], a);
        c.npig[a] += regular;
        any = any || regular;
      }
    }
    if (any) in.measured.push_back(c);
  }
  return in;
}

// Gives every measured category its place in out.curves (all -1 until accumulated).
void allocate_curves(const Inputs& in, int32_t K, PrecisionRecall& out) {
  const std::size_t S = in.measured.size();
  out.slot.assign(std::size_t(K), -1);
  out.run_base.resize(S);
  out.runs_per_curve.resize(S);
  uint64_t total = 0;
  for (std::size_t slot = 0; slot < S; ++slot) {
    out.slot[in.measured[slot].category] = static_cast<int32_t>(slot);
    out.run_base[slot] = total;
    for (int a = 0; a < A; ++a) {
      out.runs_per_curve[slot][a] = runs_for(in.measured[slot].npig[a]);
      total += uint64_t(T) * M * out.runs_per_curve[slot][a];
    }
  }
  out.recall.assign(S * T * A * M, -1.0);
  out.run_value.assign(total, 0.0);
  out.run_end.assign(total, 0);
}

// COCOeval.evaluate + accumulate, one measured category at a time per worker thread:
// categories are independent from evaluateImg through accumulate, so threads take them in
// turn. A category without regular gt is skipped: accumulate would leave it at -1 whatever its
// detections.
void evaluate_categories(Inputs& in, int num_threads, PrecisionRecall& out) {
  const int S = static_cast<int>(in.measured.size());
  std::atomic<int> next{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  auto worker = [&]() {
    try {
      Scratch s;
      for (int slot = next++; slot < S; slot = next++) {
        const Measured& c = in.measured[slot];
        s.kept.clear();
        // evaluateImg for each image with a gt or a detection of the category, in image order
        // (the others give None): a merge of the category's gt and detections by image.
        uint32_t g = in.gt_offsets[c.category], d = in.det_offsets[c.category];
        const uint32_t g_end = in.gt_offsets[c.category + 1];
        const uint32_t d_end = in.det_offsets[c.category + 1];
        while (g < g_end || d < d_end) {
          const int32_t image = std::min(g < g_end ? in.gts[g].image : INT32_MAX,
                                         d < d_end ? in.dets[d].image : INT32_MAX);
          uint32_t g_next = g, d_next = d;
          while (g_next < g_end && in.gts[g_next].image == image) ++g_next;
          while (d_next < d_end && in.dets[d_next].image == image) ++d_next;
          evaluate_image(in.gts.data() + g, g_next - g, in.dets.data() + d, d_next - d, s);
          g = g_next;
          d = d_next;
        }
        accumulate_category(std::size_t(slot), c.npig, s, out);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(failure_mutex);
      if (!failure) failure = std::current_exception();
    }
  };
  int threads =
      num_threads > 0 ? num_threads : int(std::max(1u, std::thread::hardware_concurrency()));
  threads = std::max(1, std::min(threads, S));
  std::vector<std::thread> pool;
  for (int n = 1; n < threads; ++n) {
    // Workers take categories from a shared counter, so fewer threads still finish all of
    // them; a thread that cannot be started must not end the process (std::terminate when
    // the joinable threads already started are destroyed by the unwinding).
    try {
      pool.emplace_back(worker);
    } catch (const std::system_error&) {
      break;
    }
  }
  worker();
  for (auto& thread : pool) thread.join();
  if (failure) std::rethrow_exception(failure);
}

// Reads precision[t, r, k, a, m] for t in `ts`, all r, and the measured k, in C order (k
// fastest): the entries > -1 of that slice, which np.mean sees. One cursor per measured
// category walks its curve's runs as r rises.
class PrecisionSlice {
 public:
  PrecisionSlice(const PrecisionRecall& c, std::vector<int> ts, int a, int m)
      : c_(c), ts_(std::move(ts)), a_(a), m_(m) {
    for (std::size_t slot = 0; slot < c.run_base.size(); ++slot) {
      if (c.runs_per_curve[slot][a] > 0) slots_.push_back(slot);
    }
    cursor_.resize(slots_.size());
  }
  std::size_t size() const { return ts_.size() * R * slots_.size(); }
  double operator()() {
    if (j_ == 0) {
      if (r_ == 0) {
        for (std::size_t n = 0; n < slots_.size(); ++n) {
          cursor_[n] = curve_start(c_, slots_[n], ts_[t_], a_, m_);
        }
      }
    }
    uint64_t& at = cursor_[j_];
    while (r_ >= c_.run_end[at]) ++at;
    const double v = c_.run_value[at];
    if (++j_ == slots_.size()) {  // next recall point, then next threshold
      j_ = 0;
      if (++r_ == R) r_ = 0, ++t_;
    }
    return v;
  }

 private:
  const PrecisionRecall& c_;
  std::vector<int> ts_;
  int a_, m_;
  std::vector<std::size_t> slots_;
  std::vector<uint64_t> cursor_;
  std::size_t t_ = 0, j_ = 0;
  int r_ = 0;
};

// COCOeval.summarize() and the per-category AP: means over the entries > -1 of the selected
// slice, in numpy's C order.
void summarize(CocoEvalResult& out) {
  const PrecisionRecall& c = out.curves;
  const int K = static_cast<int>(out.category_ids.size());
  std::vector<int> all_t(T);
  std::iota(all_t.begin(), all_t.end(), 0);
  auto ap = [&](int t_only, int a, int m) {
    PrecisionSlice slice(c, t_only < 0 ? all_t : std::vector<int>{t_only}, a, m);
    return mean_of_measured(slice, slice.size());
  };
  auto ar = [&](int a, int m) {
    std::vector<double> values;  // T x measured categories at most
    for (int t = 0; t < T; ++t) {
      for (std::size_t slot = 0; slot < c.run_base.size(); ++slot) {
        const double v = c.recall[((slot * T + t) * A + a) * M + m];
        if (v > -1) values.push_back(v);
      }
    }
    std::size_t n = 0;
    auto next = [&values, &n]() { return values[n++]; };
    return mean_of_measured(next, values.size());
  };
  // iouThr .5 and .75 are iouThrs[0] and iouThrs[5] (np.where(iouThr == p.iouThrs) finds them).
  out.stats = {ap(-1, 0, 2), ap(0, 0, 2), ap(5, 0, 2), ap(-1, 1, 2), ap(-1, 2, 2), ap(-1, 3, 2),
               ar(0, 0),     ar(0, 1),    ar(0, 2),    ar(1, 2),     ar(2, 2),     ar(3, 2)};

  out.ap.assign(K, -1.0);
  out.ap50.assign(K, -1.0);
  for (int k = 0; k < K; ++k) {
    const int32_t slot = c.slot[k];
    if (slot < 0 || c.runs_per_curve[slot][0] == 0) continue;  // no regular gt: -1
    for (int t_only : {-1, 0}) {
      const int t_begin = t_only < 0 ? 0 : t_only, t_end = t_only < 0 ? T : t_only + 1;
      int t = t_begin, r = 0;
      uint64_t at = curve_start(c, slot, t, 0, 2);
      auto next = [&]() {
        while (r >= c.run_end[at]) ++at;
        const double v = c.run_value[at];
        if (++r == R && ++t < t_end) r = 0, at = curve_start(c, slot, t, 0, 2);
        return v;
      };
      (t_only < 0 ? out.ap : out.ap50)[k] =
          mean_of_measured(next, std::size_t(t_end - t_begin) * R);
    }
  }
}

}  // namespace

const std::array<double, kNumIouThresholds>& iou_thresholds() {
  static const auto thresholds = linspace<kNumIouThresholds>(0.5, 0.95);
  return thresholds;
}

const std::array<double, kNumRecallPoints>& recall_thresholds() {
  static const auto thresholds = linspace<kNumRecallPoints>(0.0, 1.0);
  return thresholds;
}

const std::array<std::array<double, 2>, kNumAreaRanges>& area_ranges() {
  static const std::array<std::array<double, 2>, kNumAreaRanges> ranges = {{
      {0.0, 1e5 * 1e5},
      {0.0, 32.0 * 32.0},
      {32.0 * 32.0, 96.0 * 96.0},
      {96.0 * 96.0, 1e5 * 1e5},
  }};
  return ranges;
}

double CocoEvalResult::precision_at(int t, int r, int k, int a, int m) const {
  if (t < 0 || t >= T || r < 0 || r >= R || k < 0 || std::size_t(k) >= category_ids.size() ||
      a < 0 || a >= A || m < 0 || m >= M || std::size_t(k) >= curves.slot.size()) {
    throw std::out_of_range("precision_at: index out of range");
  }
  const int32_t slot = curves.slot[k];
  if (slot < 0 || curves.runs_per_curve[slot][a] == 0) return -1.0;
  uint64_t at = curve_start(curves, std::size_t(slot), t, a, m);
  while (r >= curves.run_end[at]) ++at;
  return curves.run_value[at];
}

double CocoEvalResult::recall_at(int t, int k, int a, int m) const {
  if (t < 0 || t >= T || k < 0 || std::size_t(k) >= category_ids.size() || a < 0 || a >= A ||
      m < 0 || m >= M || std::size_t(k) >= curves.slot.size()) {
    throw std::out_of_range("recall_at: index out of range");
  }
  const int32_t slot = curves.slot[k];
  if (slot < 0) return -1.0;
  return curves.recall[((std::size_t(slot) * T + t) * A + a) * M + m];
}

CocoEvalResult evaluate(const data::CocoDataset& gt, const std::vector<Detection>& detections,
                        const EvalOptions& options) {
  std::vector<int64_t> image_ids;
  image_ids.reserve(gt.images.size());
  for (const auto& image : gt.images) image_ids.push_back(image.id);
  std::vector<int64_t> category_ids;
  for (const auto& category : gt.categories) category_ids.push_back(category.id);
  const IdIndex images(std::move(image_ids));
  const IdIndex categories(std::move(category_ids));
  const int32_t K = categories.size();
  check(detections.size() < std::numeric_limits<uint32_t>::max() &&
            gt.annotations.size() < std::numeric_limits<uint32_t>::max(),
        "evaluate: more than 2^32 detections or annotations");

  CocoEvalResult out;
  out.category_ids = categories.ids();
  out.category_names.resize(K);
  for (const auto& category : gt.categories) {
    auto& name = out.category_names[categories.find(category.id)];
    if (name.empty()) name = category.name;
  }

  Inputs in = group_inputs(gt, detections, images, categories, out);
  allocate_curves(in, K, out.curves);
  evaluate_categories(in, options.num_threads, out.curves);
  in = Inputs();
  summarize(out);
  return out;
}
std::vector<std::string> summary_lines(const CocoEvalResult& result) {
  struct Line {
    bool ap;
    const char* iou;
    const char* area;
    int max_dets;
  };
  static const Line lines[12] = {
      {true, "0.50:0.95", "all", 100},     {true, "0.50", "all", 100},
      {true, "0.75", "all", 100},          {true, "0.50:0.95", "small", 100},
      {true, "0.50:0.95", "medium", 100},  {true, "0.50:0.95", "large", 100},
      {false, "0.50:0.95", "all", 1},      {false, "0.50:0.95", "all", 10},
      {false, "0.50:0.95", "all", 100},    {false, "0.50:0.95", "small", 100},
      {false, "0.50:0.95", "medium", 100}, {false, "0.50:0.95", "large", 100},
  };
  std::vector<std::string> out;
  for (int n = 0; n < 12; ++n) {
    const Line& l = lines[n];
    // '{:<18} {} @[ IoU={:<9} | area={:>6s} | maxDets={:>3d} ] = {:0.3f}'
    char buf[160];
    std::snprintf(buf, sizeof(buf), " %-18s %s @[ IoU=%-9s | area=%6s | maxDets=%3d ] = %0.3f",
                  l.ap ? "Average Precision" : "Average Recall", l.ap ? "(AP)" : "(AR)", l.iou,
                  l.area, l.max_dets, result.stats[n]);
    out.emplace_back(buf);
  }
  return out;
}

}  // namespace focaldet::eval
