#pragma once
// How the report writers print numbers: one place, so the tables, CSVs and plot data agree.
#include <cmath>
#include <cstdio>
#include <string>

namespace focaldet::report {

// Round-trips a double closely enough for any plot or table; "nan" reads back as NaN (pandas,
// numpy, gnuplot).
inline std::string number(double v) {
  if (std::isnan(v)) return "nan";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

// `digits` decimals; "–" for a missing (non-finite) value.
inline std::string fixed(double v, int digits = 3) {
  if (!std::isfinite(v)) return "–";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// A share in [0, 1] as a percentage; small ones keep two significant digits rather than
// printing as 0.0%; "–" for a missing value.
inline std::string percent(double share) {
  if (!std::isfinite(share)) return "–";
  char buf[32];
  const double p = 100 * share;
  std::snprintf(buf, sizeof buf, p != 0 && std::abs(p) < 0.1 ? "%.2g%%" : "%.1f%%", p);
  return buf;
}

// A CSV field, quoted when it holds a comma, a quote or a line break.
inline std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char ch : s) out += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return out + "\"";
}

}  // namespace focaldet::report
