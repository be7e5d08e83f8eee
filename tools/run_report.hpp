// The summary of a training run folder, from its own files: a before/after table of the first and the
// last eval (RUN/eval.jsonl) and RUN/plot.png, the per-step reward, accuracy and tool-use rate
// (RUN/metrics.jsonl) with the eval accuracy. `torl train` writes both at the end of a run; they are
// rebuilt from the files, so a resumed run's summary covers the whole run. Any thread.
#pragma once

#include <filesystem>
#include <ostream>

#include "common/status.hpp"

namespace torl::tools {

// Prints, per eval set, the first and the last eval (accuracy, tool-use rate, tool error rate, mean
// response tokens) and the accuracy ratio. Prints nothing when eval.jsonl holds fewer than two evals.
void print_before_after(const std::filesystem::path& run_dir, std::ostream& out);

// Writes RUN/plot.png: panels "reward and accuracy per step", "tool-use rate per step" and, when there
// are evals, "eval accuracy and tool-use rate". Fails (naming the file) when metrics.jsonl has no
// step or the PNG cannot be written.
Status write_run_plot(const std::filesystem::path& run_dir);

}  // namespace torl::tools
