// The summary of a training run folder, from its own files: a before/after table of the first and the
// last eval (RUN/eval.jsonl) and RUN/plot.png, the per-step reward, accuracy and tool-use rate
// (RUN/metrics.jsonl) with the eval accuracy. `torl train` writes both at the end of a run; they are
// rebuilt from the files, so a resumed run's summary covers the whole run. Any thread.
#pragma once

#include <filesystem>
#include <ostream>

#include "common/json.hpp"
#include "common/status.hpp"

namespace torl::actors {

// Prints, per eval set, the first and the last eval (accuracy, tool-use rate, tool error rate, mean
// response tokens) and the accuracy ratio. Prints nothing when eval.jsonl holds fewer than two evals.
void print_before_after(const std::filesystem::path& run_dir, std::ostream& out);

// The numbers of a finished run, flat, for `torl sweep`'s table (keys as in metrics.jsonl):
//   "run/steps", "run/wall_s" (`wall_s`: this process's time; a resumed run's last part only),
//   "run/step_s_mean" (rollout wait + train + publish, mean over steps),
//   "train/KEY" (the last step's numeric metrics.jsonl values), "train_mean/KEY" (their mean over steps),
//   "eval/SET/FIELD" (the last eval: accuracy, tool_use_rate, tool_error_rate, response_tokens, ...).
Json run_summary(const std::filesystem::path& run_dir, int64_t steps, double wall_s);

// Writes run_summary as RUN/summary.json (atomic): its presence means the run finished.
Status write_run_summary(const std::filesystem::path& run_dir, int64_t steps, double wall_s);

// Writes RUN/plot.png: panels "reward and accuracy per step", "tool-use rate per step" and, when there
// are evals, "eval accuracy and tool-use rate". Fails (naming the file) when metrics.jsonl has no
// step or the PNG cannot be written.
Status write_run_plot(const std::filesystem::path& run_dir);

}  // namespace torl::actors
