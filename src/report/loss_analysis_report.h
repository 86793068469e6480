#pragma once
// What `focaldet analyze-loss` writes from a LossDistribution: the curves of Fig. 4 (Lin et al.
// 2017) as CSV and PNG, and the shares of the loss as CSV and a Markdown table.
#include <string>
#include <vector>

#include "report/loss_distribution.h"
#include "report/plot.h"

namespace focaldet::report {

// Rows "gamma,group,fraction,cumulative_loss": for each gamma and group (positive, then
// negative), the curve at `fractions`. A group without samples has no rows.
std::string cumulative_loss_csv(const LossDistribution& distribution,
                                const std::vector<double>& fractions);

// loss_shares() for every gamma, in the distribution's order.
std::vector<LossShares> all_loss_shares(const LossDistribution& distribution);

// Header "gamma,num_pos,num_neg,neg_hardest_1pct,neg_hardest_5pct,neg_hardest_10pct,
// neg_hardest_20pct,easy_neg_share,pos_fraction_for_half_loss", one row per gamma; shares are
// fractions in [0, 1], "nan" where a group has no samples.
std::string loss_shares_csv(const std::vector<LossShares>& shares);

// One sentence saying what the numbers mean, then the same table in Markdown (percentages).
std::string loss_shares_markdown(const std::vector<LossShares>& shares, double easy_p_t = 0.9);

// Two panels side by side, positives and negatives, one line per gamma.
Figure cumulative_loss_figure(const LossDistribution& distribution,
                              const std::vector<double>& fractions, const std::string& title);

// Writes cumulative_loss.csv, cumulative_loss.png, loss_shares.csv and loss_shares.md into the
// existing folder `out_dir` (each atomically) and returns the Markdown. Without gnuplot the PNG
// is skipped with a warning; any other failure throws focaldet::Error naming the file.
std::string write_loss_analysis(const LossDistribution& distribution, const std::string& out_dir,
                                const std::string& title);

}  // namespace focaldet::report
