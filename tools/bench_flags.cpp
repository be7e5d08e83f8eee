#include "tools/bench_flags.hpp"

#include <cstdio>

#include "actors/run_setup.hpp"

namespace torl::tools {

Expected<BenchFlags> read_bench_flags(const std::string& file, const std::vector<std::string>& sets,
                                      const std::string& latency, const std::string& forward_ms) {
  BenchFlags flags;
  if (!file.empty() || !sets.empty()) {
    auto loaded = actors::load_bench_config(file, sets);
    if (!loaded) return loaded.status();
    flags.config = *loaded;
  }
  if (std::sscanf(latency.c_str(), "%d-%d", &flags.low_ms, &flags.high_ms) != 2 || flags.low_ms < 0 ||
      flags.high_ms < flags.low_ms) {
    return invalid_argument("--latency-ms must be LO-HI in milliseconds (got '" + latency + "')");
  }
  auto cost = forward_ms.empty() ? Expected<model::ForwardCost>(model::ForwardCost::h200_qwen_1_5b())
                                 : model::ForwardCost::parse(forward_ms);
  if (!cost) return cost.status().with_context("--forward-ms");
  flags.forward = *cost;
  return flags;
}

}  // namespace torl::tools
