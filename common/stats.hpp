// Summary statistics for measurements (latencies, throughputs). Pure functions; any thread.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

namespace torl {

// The p-quantile (0 <= p <= 1) of `values` by the nearest-rank rule; 0 for no values.
inline double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  const size_t index = std::min(values.size() - 1, static_cast<size_t>(p * static_cast<double>(values.size())));
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(index), values.end());
  return values[index];
}

}  // namespace torl
