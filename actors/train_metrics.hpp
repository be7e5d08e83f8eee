// What `torl train` records per step: the batch's sums over the ranks, the metrics.jsonl line and the
// stderr line, and trimming the metrics files back to a checkpoint's step on --resume. Called from
// the learner's thread (on_step) and at start; no state.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "actors/learner_actor.hpp"
#include "actors/metrics.hpp"
#include "common/json.hpp"
#include "common/status.hpp"
#include "model/data_parallel.hpp"

namespace torl::actors {

// A step's batch, summed over every rank's share when data parallel.
struct BatchSums {
  double reward = 0, correct = 0, tool_calls = 0, tool_errors = 0, response_tokens = 0;
  double with_tool = 0;      // trajectories that called the tool
  double trajectories = 0;
  double infra_failed = 0;   // left out of the update: failed by the infrastructure
  double groups_too_small = 0;
  double stop_requests = 0;  // ranks that were asked to stop (SIGINT/SIGTERM): > 0 stops every rank
};

// Sums this rank's batch; data parallel, one all-reduce with the other ranks (each must call it once a
// step). `stop_requested`: this rank got a stop signal.
BatchSums batch_sums(const actors::StepReport& report, model::GradientSync* sync, bool stop_requested);

// The metrics.jsonl line of a step: what the learner did, what the batch looked like, the pipeline's
// gauges and the problems of the step.
Json step_line(const actors::StepReport& report, const BatchSums& sums, const std::vector<int64_t>& problems,
               const actors::MetricsSnapshot& pipeline);

// The readable stderr line of a step_line, e.g. "step 3/80  reward -0.250  acc 0.375 ...".
std::string step_text(const Json& line, int64_t steps);

// The records of a run's JSONL file (metrics.jsonl, eval.jsonl) that have a "step", in order; lines
// that do not parse (a torn last line after a kill) are skipped. A missing file gives none.
std::vector<Json> read_step_records(const std::filesystem::path& file);

// Keeps the records of `file` of steps <= `step`, so that a resumed run continues after them.
// Rewritten through a temporary file, so a crash here loses nothing. A missing file is fine.
Status keep_metrics_until(const std::filesystem::path& file, int64_t step);

}  // namespace torl::actors
