// One pycocotools rule per test, on the smallest input that shows it. Expected values are worked
// out by hand in the comments (101 recall points r = 0, .01, ..., 1; AP averages 10 IoU
// thresholds x 101 points).
#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

#include "common/error.h"
#include "eval/coco_eval.h"
#include "eval_test_util.h"

namespace focaldet::test {
namespace {

using eval::CocoEvalResult;
using eval::Detection;
using eval::evaluate;

// Results here are sums of a few exact fractions: tight, but not bit-exact, tolerance.
constexpr double kTol = 1e-12;
enum Stat { AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl };

TEST(CocoEvalParams, ThresholdsAreNumpyLinspace) {
  const auto& t = eval::iou_thresholds();
  EXPECT_EQ(t[0], 0.5);
  EXPECT_EQ(t[5], 0.75);                // summarize() finds .75 with ==, so it must be exact
  EXPECT_EQ(t[8], 0.8999999999999999);  // np.linspace(.5, .95, 10)[8], not 0.9
  EXPECT_EQ(t[9], 0.95);
  const auto& r = eval::recall_thresholds();
  EXPECT_EQ(r[0], 0.0);
  EXPECT_EQ(r[50], 0.5);
  EXPECT_EQ(r[7], 7 * 0.01);
  EXPECT_EQ(r[100], 1.0);
}

TEST(CocoEval, PerfectDetectionScoresOneAndEmptyAreaRangesAreMinusOne) {
  GtBuilder gt({1}, {1});
  gt.add(1, 1, {0, 0, 10, 10});  // area 100: small
  const CocoEvalResult r = evaluate(gt.ds, {det(1, 1, {0, 0, 10, 10}, 0.9)});
  const double want[12] = {1, 1, 1, 1, -1, -1, 1, 1, 1, 1, -1, -1};
  for (int n = 0; n < 12; ++n) EXPECT_NEAR(r.stats[n], want[n], kTol) << eval::kStatNames[n];
  ASSERT_EQ(r.ap.size(), 1u);
  EXPECT_NEAR(r.ap[0], 1.0, kTol);
}

TEST(CocoEval, IouEqualToThresholdMatches) {
  // IoU 50/100 = 0.5 exactly: a match at t = .50 only, so AP = 1/10 and AP50 = 1.
  GtBuilder gt({1}, {1});
  gt.add(1, 1, {0, 0, 10, 10});
  CocoEvalResult r = evaluate(gt.ds, {det(1, 1, {0, 0, 10, 5}, 0.9)});
  EXPECT_NEAR(r.stats[AP50], 1.0, kTol);
  EXPECT_NEAR(r.stats[AP], 0.1, kTol);
  EXPECT_NEAR(r.stats[AR100], 0.1, kTol);
  // IoU 7500/10000 = 0.75 exactly: matches at .50 ... .75 (6 thresholds).
  GtBuilder gt2({1}, {1});
  gt2.add(1, 1, {0, 0, 100, 100});
  r = evaluate(gt2.ds, {det(1, 1, {0, 0, 100, 75}, 0.9)});
  EXPECT_NEAR(r.stats[AP75], 1.0, kTol);
  EXPECT_NEAR(r.stats[AP], 0.6, kTol);
  // Just under 0.5: no match anywhere.
  r = evaluate(gt.ds, {det(1, 1, {0, 0, 10, 4.999}, 0.9)});
  EXPECT_NEAR(r.stats[AP50], 0.0, kTol);
}

// gt [0,0,100,100]; A = [0,0,100,52] (IoU .52, matches at t = .50 only), B = [0,0,100,90]
// (IoU .90, matches at t = .50 ... .8999). Same score: the one first in the file goes first.
TEST(CocoEval, EqualScoresKeepFileOrderWithinAnImage) {
  GtBuilder gt({1}, {1});
  gt.add(1, 1, {0, 0, 100, 100});
  const Detection a = det(1, 1, {0, 0, 100, 52}, 0.5);
  const Detection b = det(1, 1, {0, 0, 100, 90}, 0.5);
  // A first: t=.50: A tp, B fp -> precision 1. t=.55...8999 (8 thresholds): A fp, B tp ->
  // pr [0, .5], envelope .5. t=.95: nothing. AP = (1 + 8 * .5) / 10.
  EXPECT_NEAR(evaluate(gt.ds, {a, b}).stats[AP], 0.5, kTol);
  // B first: B tp at 9 thresholds, precision 1. AP = 9 / 10.
  EXPECT_NEAR(evaluate(gt.ds, {b, a}).stats[AP], 0.9, kTol);
}

// Images 1 and 2 each have one gt; image 1's detection misses, image 2's is exact, same score.
// accumulate concatenates images in ascending id order and sorts stably: [fp, tp], rc [0, .5],
// pr [0, .5] -> envelope .5 for r <= .5 (51 points), 0 above: AP = 51 * .5 / 101. The order of
// the images and detections in the files must not matter.
TEST(CocoEval, EqualScoresAcrossImagesGoInImageIdOrder) {
  GtBuilder gt({2, 1}, {1});
  gt.add(2, 1, {0, 0, 10, 10});
  gt.add(1, 1, {0, 0, 10, 10});
  const std::vector<Detection> dets = {det(2, 1, {0, 0, 10, 10}, 0.7),
                                       det(1, 1, {300, 300, 10, 10}, 0.7)};
  EXPECT_NEAR(evaluate(gt.ds, dets).stats[AP], 25.5 / 101, kTol);
  // The same with the miss in image 2 instead: [tp, fp] -> precision 1 up to r = .5.
  const std::vector<Detection> swapped = {det(2, 1, {300, 300, 10, 10}, 0.7),
                                          det(1, 1, {0, 0, 10, 10}, 0.7)};
  EXPECT_NEAR(evaluate(gt.ds, swapped).stats[AP], 51.0 / 101, kTol);
}

// 100 misses scored above an exact hit: the hit is 101st, cut before matching (and counting).
TEST(CocoEval, DetectionsCutToMaxDetsPerImageAndCategoryBeforeMatching) {
  GtBuilder gt({1}, {1, 2});
  gt.add(1, 1, {0, 0, 10, 10});
  std::vector<Detection> dets;
  for (int n = 0; n < 100; ++n) dets.push_back(det(1, 1, {300, 300, 10, 10}, 0.9));
  dets.push_back(det(1, 1, {0, 0, 10, 10}, 0.1));
  CocoEvalResult r = evaluate(gt.ds, dets);
  EXPECT_NEAR(r.stats[AR100], 0.0, kTol);
  EXPECT_NEAR(r.stats[AP], 0.0, kTol);
  // One miss fewer: the hit is 100th and counts. Detections of another category in the same
  // image do not take its places. rc [0 x 99, 1], pr 1/100 at the end: AP = .01.
  dets.erase(dets.begin());
  for (int n = 0; n < 5; ++n) dets.push_back(det(1, 2, {300, 300, 10, 10}, 0.95));
  r = evaluate(gt.ds, dets);
  EXPECT_NEAR(r.stats[AR100], 1.0, kTol);
  EXPECT_NEAR(r.stats[AR10], 0.0, kTol);
  EXPECT_NEAR(r.ap[0], 0.01, kTol);
  EXPECT_NEAR(r.ap[1], -1.0, kTol);  // category 2 has no ground truth
}

// maxDets 1 / 10 keep each image's best 1 / 10 detections: a hit ranked second in its image
// counts for AR10 but not AR1.
TEST(CocoEval, SmallerMaxDetsCutEachImage) {
  GtBuilder gt({1}, {1});
  gt.add(1, 1, {0, 0, 10, 10});
  const CocoEvalResult r =
      evaluate(gt.ds, {det(1, 1, {300, 300, 10, 10}, 0.9), det(1, 1, {0, 0, 10, 10}, 0.8)});
  EXPECT_NEAR(r.stats[AR1], 0.0, kTol);
  EXPECT_NEAR(r.stats[AR10], 1.0, kTol);
  EXPECT_NEAR(r.stats[AR100], 1.0, kTol);
}

// Area ranges use the gt's `area` field, bounds included: area 1024 = 32^2 is both small and
// medium; a 10x10 box whose area field says 5000 is medium only.
TEST(CocoEval, AreaRangesUseGtAreaFieldWithInclusiveBounds) {
  GtBuilder gt({1}, {1});
  gt.add(1, 1, {0, 0, 32, 32});
  CocoEvalResult r = evaluate(gt.ds, {det(1, 1, {0, 0, 32, 32}, 0.9)});
  EXPECT_NEAR(r.stats[APs], 1.0, kTol);
  EXPECT_NEAR(r.stats[APm], 1.0, kTol);
  EXPECT_NEAR(r.stats[APl], -1.0, kTol);

  GtBuilder gt2({1}, {1});
  gt2.add(1, 1, {0, 0, 10, 10}, /*crowd=*/false, /*area=*/5000);
  r = evaluate(gt2.ds, {det(1, 1, {0, 0, 10, 10}, 0.9)});
  // small: the gt is ignored, so is the detection matched to it; no regular gt -> -1.
  EXPECT_NEAR(r.stats[APs], -1.0, kTol);
  // medium: a regular gt, matched; the detection's own area (100) does not matter.
  EXPECT_NEAR(r.stats[APm], 1.0, kTol);
  EXPECT_NEAR(r.stats[ARm], 1.0, kTol);
}

// A detection that matches nothing is ignored in an area range its own area (w * h) is
// outside of: a 50x50 miss is a false positive for "all" but not for "small".
TEST(CocoEval, UnmatchedDetectionsOutsideAreaRangeAreIgnored) {
  GtBuilder gt({1}, {1});
  gt.add(1, 1, {0, 0, 10, 10});
  const CocoEvalResult r =
      evaluate(gt.ds, {det(1, 1, {200, 200, 50, 50}, 0.9), det(1, 1, {0, 0, 10, 10}, 0.8)});
  EXPECT_NEAR(r.stats[APs], 1.0, kTol);
  // all: [fp, tp]: pr [0, .5] -> envelope .5 at every recall point.
  EXPECT_NEAR(r.stats[AP], 0.5, kTol);
}

// A detection over a regular gt (IoU .62) and a crowd region (IoU 1 by detection area), crowd
// listed first in the file: regular gt are tried first and, once a regular match is held, the
// search stops at the first ignored gt. t <= .60 (3 thresholds): true positive. Above, only the
// crowd matches: ignored, so nothing counts (precision 0). AP = 3 / 10.
TEST(CocoEval, RegularGtMatchedBeforeIgnoredGt) {
  GtBuilder gt({1}, {1});
  gt.add(1, 1, {0, 0, 100, 62}, /*crowd=*/true);
  gt.add(1, 1, {0, 0, 100, 100});
  const CocoEvalResult r = evaluate(gt.ds, {det(1, 1, {0, 0, 100, 62}, 0.9)});
  EXPECT_NEAR(r.stats[AP50], 1.0, kTol);
  EXPECT_NEAR(r.stats[AP], 0.3, kTol);
  EXPECT_NEAR(r.stats[AR100], 0.3, kTol);
}

// Three small detections inside a 100x100 crowd region: IoU with a crowd region is
// intersection / detection area = 1, so each is matched to it (any number of times) and
// ignored; by ordinary IoU (.01) they would be false positives. The exact hit on the regular
// gt, scored lowest, is then the only thing counted: AP = 1.
TEST(CocoEval, CrowdRegionAbsorbsManyDetectionsByDetectionArea) {
  GtBuilder gt({1}, {1});
  gt.add(1, 1, {0, 0, 100, 100}, /*crowd=*/true);
  gt.add(1, 1, {200, 200, 10, 10});
  const std::vector<Detection> dets = {
      det(1, 1, {10, 10, 10, 10}, 0.9), det(1, 1, {30, 30, 10, 10}, 0.8),
      det(1, 1, {50, 50, 10, 10}, 0.7), det(1, 1, {200, 200, 10, 10}, 0.1)};
  CocoEvalResult r = evaluate(gt.ds, dets);
  EXPECT_NEAR(r.stats[AP], 1.0, kTol);
  // Half of the detection inside the crowd region: 100 / 200 = .5, matched (ignored) at
  // t = .50 only; a false positive above it. t=.50: AP 1; others [fp, tp]: .5. AP = .55.
  r = evaluate(gt.ds, {det(1, 1, {90, 0, 20, 10}, 0.9), det(1, 1, {200, 200, 10, 10}, 0.1)});
  EXPECT_NEAR(r.stats[AP50], 1.0, kTol);
  EXPECT_NEAR(r.stats[AP], 0.55, kTol);
}

// Crowd regions are never counted as ground truth to find: a category whose only gt is a
// crowd region has no regular gt, so -1, and is left out of the mean.
TEST(CocoEval, CrowdOnlyCategoryIsMinusOne) {
  GtBuilder gt({1}, {1, 2});
  gt.add(1, 1, {0, 0, 10, 10});
  gt.add(1, 2, {0, 0, 100, 100}, /*crowd=*/true);
  const CocoEvalResult r =
      evaluate(gt.ds, {det(1, 1, {0, 0, 10, 10}, 0.9), det(1, 2, {0, 0, 10, 10}, 0.9)});
  EXPECT_NEAR(r.ap[1], -1.0, kTol);
  EXPECT_NEAR(r.stats[AP], 1.0, kTol);
}

// A regular gt is matched once: a duplicate of a hit is a false positive. Two gt, both
// detections on the first: recall 1/2 (it would be 2/2 if matched twice).
TEST(CocoEval, RegularGtIsNeverMatchedTwice) {
  GtBuilder gt({1}, {1});
  gt.add(1, 1, {0, 0, 10, 10});
  gt.add(1, 1, {100, 100, 10, 10});
  const CocoEvalResult r =
      evaluate(gt.ds, {det(1, 1, {0, 0, 10, 10}, 0.9), det(1, 1, {0, 0, 10, 10}, 0.8)});
  EXPECT_NEAR(r.stats[AR100], 0.5, kTol);
  // [tp, fp]: precision 1 up to r = .5 (51 points, searchsorted left takes r = .5).
  EXPECT_NEAR(r.stats[AP], 51.0 / 101, kTol);
}

// A detection takes the best-IoU gt among those still free, not the first one that passes.
// gt1 [0,0,100,60] (first in the file), gt2 [0,0,100,100]; d1 [0,0,100,100] has IoU .6 with
// gt1 and 1 with gt2, d2 [0,0,100,40] has IoU 2/3 with gt1 and .4 with gt2. d1 takes gt2, so
// d2 finds gt1 free: both hits for t <= .65 (4 thresholds; taking the first would leave d2
// with IoU .4, a miss). Above, d2 misses: [tp, fp] over 2 gt -> 51 / 101.
TEST(CocoEval, GreedyMatchTakesHighestIou) {
  GtBuilder gt({1}, {1});
  gt.add(1, 1, {0, 0, 100, 60});
  gt.add(1, 1, {0, 0, 100, 100});
  const CocoEvalResult r =
      evaluate(gt.ds, {det(1, 1, {0, 0, 100, 100}, 0.9), det(1, 1, {0, 0, 100, 40}, 0.8)});
  EXPECT_NEAR(r.stats[AP50], 1.0, kTol);
  EXPECT_NEAR(r.stats[AP], (4 * 1.0 + 6 * 51.0 / 101) / 10, kTol);
}

// rc and precision for [fp, tp, tp] over 3 gt: rc [0, 1/3, 2/3], pr [0, 1/2, 2/3]. The
// envelope makes every point up to rc 2/3 worth 2/3: r = 0 ... .66 (67 points; searchsorted
// left finds rc[0] = 0 for r = 0). Above 2/3 precision is 0.
TEST(CocoEval, PrecisionEnvelopeAndSearchsortedLeft) {
  GtBuilder gt({1}, {1});
  gt.add(1, 1, {0, 0, 10, 10});
  gt.add(1, 1, {100, 0, 10, 10});
  gt.add(1, 1, {200, 0, 10, 10});
  const CocoEvalResult r =
      evaluate(gt.ds, {det(1, 1, {400, 400, 10, 10}, 0.9), det(1, 1, {0, 0, 10, 10}, 0.8),
                       det(1, 1, {100, 0, 10, 10}, 0.7)});
  EXPECT_NEAR(r.precision_at(0, 0, 0, 0, 2), 2.0 / 3, kTol);   // pr[0] = 0 before the envelope
  EXPECT_NEAR(r.precision_at(0, 33, 0, 0, 2), 2.0 / 3, kTol);  // pr[1] = .5 before it
  EXPECT_NEAR(r.precision_at(0, 66, 0, 0, 2), 2.0 / 3, kTol);
  EXPECT_NEAR(r.precision_at(0, 67, 0, 0, 2), 0.0, kTol);
  EXPECT_NEAR(r.recall_at(0, 0, 0, 2), 2.0 / 3, kTol);
  EXPECT_NEAR(r.stats[AP], 67 * (2.0 / 3) / 101, kTol);
}

// One of two gt found: rc = .5 equals recall point 50, which searchsorted(side='left') counts
// (side='right' would stop at 49): AP = 51 / 101.
TEST(CocoEval, RecallPointEqualToRecallCounts) {
  GtBuilder gt({1}, {1});
  gt.add(1, 1, {0, 0, 10, 10});
  gt.add(1, 1, {100, 0, 10, 10});
  const CocoEvalResult r = evaluate(gt.ds, {det(1, 1, {0, 0, 10, 10}, 0.9)});
  EXPECT_NEAR(r.precision_at(0, 50, 0, 0, 2), 1.0, kTol);
  EXPECT_NEAR(r.precision_at(0, 51, 0, 0, 2), 0.0, kTol);
  EXPECT_NEAR(r.stats[AP], 51.0 / 101, kTol);
}

// Category 2 has detections but no gt, category 3 has nothing: both -1, out of the mean.
// Category ids are reported in ascending order whatever the file order.
TEST(CocoEval, CategoriesWithoutGtAreMinusOneAndLeftOutOfTheMean) {
  GtBuilder gt({1}, {3, 1, 2});
  gt.add(1, 1, {0, 0, 10, 10});
  const CocoEvalResult r =
      evaluate(gt.ds, {det(1, 1, {0, 0, 10, 10}, 0.9), det(1, 2, {50, 50, 10, 10}, 0.9)});
  ASSERT_EQ(r.category_ids, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(r.category_names[2], "c3");
  EXPECT_NEAR(r.ap[0], 1.0, kTol);
  EXPECT_NEAR(r.ap[1], -1.0, kTol);
  EXPECT_NEAR(r.ap[2], -1.0, kTol);
  EXPECT_NEAR(r.stats[AP], 1.0, kTol);
  EXPECT_NEAR(r.precision_at(0, 0, 1, 0, 2), -1.0, kTol);
}

// No detections at all: everything with gt is 0, not -1.
TEST(CocoEval, NoDetectionsGivesZero) {
  GtBuilder gt({1}, {1});
  gt.add(1, 1, {0, 0, 10, 10});
  const CocoEvalResult r = evaluate(gt.ds, {});
  EXPECT_NEAR(r.stats[AP], 0.0, kTol);
  EXPECT_NEAR(r.stats[AR100], 0.0, kTol);
  EXPECT_NEAR(r.stats[APm], -1.0, kTol);
}

// pycocotools stores the matched gt's id in dtMatches and tests it for truth, so a match to a
// gt whose id is 0 counts as unmatched (a false positive). Reproduced for parity.
TEST(CocoEval, MatchToGtWithIdZeroCountsAsUnmatched) {
  GtBuilder gt({1}, {1});
  gt.add(1, 1, {0, 0, 10, 10});
  gt.ds.annotations[0].id = 0;
  const CocoEvalResult r = evaluate(gt.ds, {det(1, 1, {0, 0, 10, 10}, 0.9)});
  EXPECT_NEAR(r.stats[AP], 0.0, kTol);
}

TEST(CocoEval, SameResultWithOneOrManyThreads) {
  GtBuilder gt({1, 2, 3}, {1, 2, 3, 4});
  std::vector<Detection> dets;
  for (int i = 1; i <= 3; ++i) {
    for (int c = 1; c <= 4; ++c) {
      gt.add(i, c, {10.0 * c, 5.0 * i, 20, 30});
      dets.push_back(det(i, c, {10.0 * c + i, 5.0 * i, 20, 28}, 0.1 * c + 0.01 * i));
      dets.push_back(det(i, c, {300, 300, 20, 20}, 0.05 * c));
    }
  }
  eval::EvalOptions one, four;
  one.num_threads = 1;
  four.num_threads = 4;
  const CocoEvalResult a = evaluate(gt.ds, dets, one), b = evaluate(gt.ds, dets, four);
  for (int n = 0; n < 12; ++n) EXPECT_EQ(a.stats[n], b.stats[n]) << eval::kStatNames[n];
  for (int t = 0; t < eval::kNumIouThresholds; ++t) {
    for (int k = 0; k < 4; ++k) {
      for (int ar = 0; ar < eval::kNumAreaRanges; ++ar) {
        for (int m = 0; m < eval::kNumMaxDets; ++m) {
          EXPECT_EQ(a.recall_at(t, k, ar, m), b.recall_at(t, k, ar, m));
          for (int r = 0; r < eval::kNumRecallPoints; ++r) {
            EXPECT_EQ(a.precision_at(t, r, k, ar, m), b.precision_at(t, r, k, ar, m));
          }
        }
      }
    }
  }
}

TEST(CocoEvalErrors, UnknownImageNamesTheDetection) {
  GtBuilder gt({1}, {1});
  gt.add(1, 1, {0, 0, 10, 10});
  try {
    evaluate(gt.ds, {det(1, 1, {0, 0, 10, 10}, 0.9), det(7, 1, {0, 0, 10, 10}, 0.9)});
    FAIL() << "no error for an unknown image id";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("detection 1"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("image_id 7"), std::string::npos) << e.what();
  }
}

// pycocotools evaluates catIds = the ground truth's: a detection of another category is never
// looked at (no error, no false positive). It is counted so that the CLI can say so.
TEST(CocoEval, DetectionsOfUnknownCategoriesAreLeftOutAndCounted) {
  GtBuilder gt({1}, {1});
  gt.add(1, 1, {0, 0, 10, 10});
  const CocoEvalResult r =
      evaluate(gt.ds, {det(1, 9, {0, 0, 10, 10}, 0.95), det(1, 1, {0, 0, 10, 10}, 0.9),
                       det(1, 8, {0, 0, 10, 10}, 0.99)});
  EXPECT_EQ(r.category_ids, (std::vector<int64_t>{1}));
  EXPECT_NEAR(r.stats[AP], 1.0, kTol);  // as if the two were not in the file
  EXPECT_EQ(r.detections_left_out, 2);
  EXPECT_EQ(r.annotations_left_out, 0);
}

// getAnnIds(imgIds, catIds) picks only listed images and categories: other annotations are
// neither matched nor counted as ground truth to find.
TEST(CocoEval, GtOfUnlistedImagesOrCategoriesIsLeftOutAndCounted) {
  GtBuilder gt({1}, {1});
  gt.add(1, 1, {0, 0, 10, 10});
  gt.add(5, 1, {0, 0, 10, 10});  // image 5 is not listed
  gt.add(1, 4, {0, 0, 10, 10});  // category 4 is not listed
  const CocoEvalResult r = evaluate(gt.ds, {det(1, 1, {0, 0, 10, 10}, 0.9)});
  EXPECT_NEAR(r.stats[AP], 1.0, kTol);
  EXPECT_NEAR(r.stats[AR100], 1.0, kTol);
  EXPECT_EQ(r.annotations_left_out, 2);
  EXPECT_EQ(r.detections_left_out, 0);
}

TEST(CocoEvalErrors, NonFiniteNumberNamesTheDetection) {
  GtBuilder gt({1}, {1});
  Detection d = det(1, 1, {0, 0, 10, 10}, 0.9);
  d.w = std::numeric_limits<double>::quiet_NaN();
  try {
    evaluate(gt.ds, {det(1, 1, {0, 0, 10, 10}, 0.9), d});
    FAIL() << "no error for a NaN width";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("detection 1"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace focaldet::test
