#include "report/loss_analysis_report.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <cstdio>
#include <sstream>

#include "common/atomic_file.h"
#include "report/format.h"

namespace focaldet::report {
namespace {

constexpr SampleGroup kGroups[] = {SampleGroup::Positive, SampleGroup::Negative};

std::string gamma_text(double gamma) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", gamma);
  return buf;
}

}  // namespace

std::string cumulative_loss_csv(const LossDistribution& d, const std::vector<double>& fractions) {
  std::ostringstream out;
  out << "gamma,group,fraction,cumulative_loss\n";
  for (size_t g = 0; g < d.gammas().size(); ++g) {
    for (SampleGroup group : kGroups) {
      const CumulativeCurve curve = d.curve(group, g);
      if (curve.empty()) continue;
      for (double x : fractions) {
        out << gamma_text(d.gammas()[g]) << ',' << to_string(group) << ',' << number(x) << ','
            << number(curve.at(x)) << '\n';
      }
    }
  }
  return out.str();
}

std::vector<LossShares> all_loss_shares(const LossDistribution& d) {
  std::vector<LossShares> shares;
  for (size_t g = 0; g < d.gammas().size(); ++g) shares.push_back(loss_shares(d, g));
  return shares;
}

std::string loss_shares_csv(const std::vector<LossShares>& shares) {
  std::ostringstream out;
  out << "gamma,num_pos,num_neg,neg_hardest_1pct,neg_hardest_5pct,neg_hardest_10pct,"
         "neg_hardest_20pct,easy_neg_share,pos_fraction_for_half_loss\n";
  for (const LossShares& s : shares) {
    out << gamma_text(s.gamma) << ',' << s.num_pos << ',' << s.num_neg << ','
        << number(s.neg_hardest_1) << ',' << number(s.neg_hardest_5) << ','
        << number(s.neg_hardest_10) << ',' << number(s.neg_hardest_20) << ','
        << number(s.easy_neg_share) << ',' << number(s.pos_fraction_for_half_loss) << '\n';
  }
  return out.str();
}

std::string loss_shares_markdown(const std::vector<LossShares>& shares, double easy_p_t) {
  const std::string easy = "p_t >= " + gamma_text(easy_p_t);
  std::ostringstream out;
  out << "For each gamma of the loss (1 - p_t)^gamma * -log(p_t), over every sigmoid term of "
         "the non-ignored anchors: the share of the negatives' loss carried by their hardest "
         "1%, 5%, 10% and 20% and by the easy ones ("
      << easy
      << "), and the fraction of the hardest positives that carries half of the positives' "
         "loss (Lin et al. 2017, Fig. 4).\n\n";
  out << "| gamma | positives | negatives | hardest 1% of negatives | hardest 5% | hardest 10% "
         "| hardest 20% | easy negatives ("
      << easy << ") | hardest positives carrying half |\n";
  out << "|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const LossShares& s : shares) {
    out << "| " << gamma_text(s.gamma) << " | " << s.num_pos << " | " << s.num_neg << " | "
        << percent(s.neg_hardest_1) << " | " << percent(s.neg_hardest_5) << " | "
        << percent(s.neg_hardest_10) << " | " << percent(s.neg_hardest_20) << " | "
        << percent(s.easy_neg_share) << " | " << percent(s.pos_fraction_for_half_loss) << " |\n";
  }
  return out.str();
}

Figure cumulative_loss_figure(const LossDistribution& d, const std::vector<double>& fractions,
                              const std::string& title) {
  Figure figure;
  figure.title = title;
  figure.columns = 2;
  figure.width = 1280;
  figure.height = 560;
  for (SampleGroup group : kGroups) {
    Panel panel;
    panel.title = group == SampleGroup::Positive ? "positive samples" : "negative samples";
    panel.x_label = "fraction of samples, easiest to hardest";
    panel.y_label = "cumulative normalised loss";
    panel.x_min = 0;
    panel.x_max = 1;
    panel.y_min = 0;
    panel.y_max = 1;
    panel.legend = "top left";
    for (size_t g = 0; g < d.gammas().size(); ++g) {
      const CumulativeCurve curve = d.curve(group, g);
      if (curve.empty()) continue;
      Series s;
      s.label = "gamma = " + gamma_text(d.gammas()[g]);
      s.x = fractions;
      for (double x : fractions) s.y.push_back(curve.at(x));
      panel.series.push_back(std::move(s));
    }
    figure.panels.push_back(std::move(panel));
  }
  return figure;
}

std::string write_loss_analysis(const LossDistribution& d, const std::string& out_dir,
                                const std::string& title) {
  const std::vector<double> fractions = curve_fractions();
  const std::vector<LossShares> shares = all_loss_shares(d);
  std::string markdown = loss_shares_markdown(shares, d.options().easy_p_t);
  write_file_atomic(out_dir + "/cumulative_loss.csv", cumulative_loss_csv(d, fractions));
  write_file_atomic(out_dir + "/loss_shares.csv", loss_shares_csv(shares));
  write_file_atomic(out_dir + "/loss_shares.md", markdown);
  try {
    write_png(cumulative_loss_figure(d, fractions, title), out_dir + "/cumulative_loss.png");
  } catch (const PlotUnavailable& e) {
    spdlog::warn("{}; the CSVs are written", e.what());
  }
  return markdown;
}

}  // namespace focaldet::report
