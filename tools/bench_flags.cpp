#include "tools/bench_flags.hpp"

#include <cstdio>

#include "config/load.hpp"

namespace torl::tools {
namespace {

// The benches use the rollout, tool and reward sections alone: model.path and the data files are not
// required.
Expected<config::Config> load_bench_config(const std::string& file, const std::vector<std::string>& sets) {
  config::LoadOptions options;
  options.overrides = sets;
  options.require_paths = false;
  options.only_section = "rollout";
  return config::load_config_or_error(file, options);
}

}  // namespace

Expected<BenchFlags> read_bench_flags(const std::string& file, const std::vector<std::string>& sets,
                                      const std::string& latency, const std::string& forward_ms) {
  BenchFlags flags;
  if (!file.empty() || !sets.empty()) {
    auto loaded = load_bench_config(file, sets);
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
