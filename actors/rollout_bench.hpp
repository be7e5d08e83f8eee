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
  double late_ms_per_forward = 0;  // modelled: how late the forwards' sleeps woke, on average
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

// Gradient steps overlapping rollouts (`torl train bench --modelled`): steps of a training run whose
// rollouts go through the real pipeline (modelled accelerator, scripted text, the real sandbox pool
// behind a delay) and whose learner is modelled too (each update sleeps learner_ms), under the run's
// own control (TrainingRun: the staleness gate). At max_staleness 0 a step takes rollout + update; at
// 1 the next step's rollouts run during the update, so it should take max(rollout, update). Then
// backpressure: rollouts alone (no update) with tool.max_pending below the calls a decode batch makes.
struct OverlapBenchOptions {
  config::Config config;  // rollout.prompts_per_step, samples_per_prompt, max_batch; tool; reward
  model::ForwardCost forward;
  double learner_ms = -1;  // a modelled update; < 0: the median rollout time of a step at max_staleness 0
  int64_t steps = 4;       // per run (>= 3: the first step fills the pipeline)
  int64_t repeats = 3;     // runs of each setting, interleaved; medians reported
  int low_ms = 50, high_ms = 500;
  std::vector<int> max_pending = {2, 8};  // the backpressure settings
};

struct OverlapRow {
  int64_t max_staleness = 0;
  int max_pending = 0;
  double step_s = 0;     // the median run's step time: the median time from one update's end to the next
  double rollout_s = 0;  // that run's median time from a step's submission to its last trajectory
  MetricsSnapshot run;   // that run's pipeline gauges
  int64_t max_held = 0;  // most paused sequences held at a generator because max_pending were out
};

struct OverlapBenchResult {
  double rollout_s = 0, learner_s = 0;  // what the comparison is made with (medians at staleness 0)
  std::vector<OverlapRow> overlap;       // max_staleness 0, then 1 (tool.max_pending as configured)
  std::vector<OverlapRow> backpressure;  // rollouts alone, one row per options.max_pending
};

Expected<OverlapBenchResult> run_overlap_bench(const OverlapBenchOptions& options,
                                               const std::function<void(const std::string&)>& progress);

}  // namespace torl::actors
