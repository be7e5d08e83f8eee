// The rollout pipeline's benchmark (`torl eval bench`): how much tool calls cost the trajectories/s of
// rollout.mode async and rounds at C = 0, 1 and 4. Every trajectory writes the same four code blocks
// and an answer (a ScriptedLm), the real sandbox pool runs them behind an extra random delay, and the
// model is either the random 4-layer CPU model (which shares the CPUs with the sandbox workers: that
// measures contention as much as scheduling) or a modelled accelerator (model/modelled_lm.hpp: each
// forward sleeps its modelled time, using no CPU, as a host waits on a GPU).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "actors/metrics.hpp"
#include "common/status.hpp"
#include "config/config.hpp"
#include "model/modelled_lm.hpp"

namespace torl::actors {

struct RolloutBenchOptions {
  config::Config config;           // its rollout, tool and reward sections
  int64_t trajectories = 64;
  int64_t batch = 16;              // rollout.max_batch
  int64_t repeats = 1;             // runs of each configuration, interleaved; the median one is reported
  int low_ms = 50, high_ms = 500;  // the extra sandbox delay, uniform
  std::optional<model::ForwardCost> modelled;  // the modelled accelerator; none: the CPU model
};

struct RolloutBenchRow {
  config::RolloutMode mode = config::RolloutMode::kAsync;
  int calls = 0;                 // C
  MetricsSnapshot run;           // the median run by trajectories/s
  double forwards_per_step = 0;  // model forwards per engine step (of that run)
  double rows_per_forward = 0;
  double vs_c0 = 0;              // trajectories/s over the same mode's at C = 0
};

struct RolloutBenchResult {
  int64_t tokens_per_trajectory = 0;  // generated, on average
  std::vector<RolloutBenchRow> rows;  // async C = 0, 1, 4, then rounds
};

// Runs a warm-up, then every configuration `repeats` times. `progress` gets a line per finished round
// and a warning when a run scored fewer than all answers right. Errors: bad options, the sandbox not
// starting, an actor failing.
Expected<RolloutBenchResult> run_rollout_bench(const RolloutBenchOptions& options,
                                               const std::function<void(const std::string&)>& progress);

}  // namespace torl::actors
