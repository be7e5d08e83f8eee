// The flags the modelled benches share (torl eval bench, torl train bench): read into a config and
// the modelled costs.
#pragma once

#include <string>
#include <vector>

#include "common/status.hpp"
#include "config/config.hpp"
#include "model/modelled_lm.hpp"

namespace torl::tools {

// The benches' shared flags: the config (--config and --set; the defaults when neither), the sandbox
// delay "LO-HI" ms (--latency-ms) and the modelled forward's cost (--forward-ms; empty: the H200 default).
// Errors name the flag.
struct BenchFlags {
  config::Config config;
  int low_ms = 50, high_ms = 500;
  model::ForwardCost forward;
};
Expected<BenchFlags> read_bench_flags(const std::string& file, const std::vector<std::string>& sets,
                                      const std::string& latency, const std::string& forward_ms);

}  // namespace torl::tools
