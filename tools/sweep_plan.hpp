// SweepPlan: what `torl sweep SWEEP.yaml` runs, read from the sweep file. Pure; any thread.
//
//   base: torl-1.5b.yaml          # the config every run starts from (relative to this file)
//   name: max-calls               # the sweep's folder, RUN.output_dir/NAME (default: the file's stem)
//   set: {train.steps: 100}       # overrides for every run (optional)
//   grid:                         # every combination, the first key slowest ...
//     tool.max_calls: [0, 1, 2, 4]
//   runs:                         # ... or a list of runs, each a map of overrides and an optional name
//     - {name: torl, tool.feedback: torl}
//   parallel: 1                   # runs at once (optional)
//   metrics: [eval/*/accuracy]    # the table's columns: run_summary keys, '*' matching one part
//
// Override keys are config keys (dotted, or nested maps); values are YAML, as for `--set`.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "common/status.hpp"

namespace torl::tools {

struct SweepRun {
  std::string label;              // its folder name: the name given, or "max_calls=2" from its overrides
  std::vector<std::string> sets;  // "tool.max_calls=2", in order
};

struct SweepPlan {
  std::filesystem::path base;       // the base config, resolved against the sweep file's folder
  std::string name;
  std::vector<std::string> sets;    // for every run, before the run's own
  std::vector<SweepRun> runs;
  int parallel = 1;
  std::vector<std::string> metrics;  // empty: the defaults (kDefaultSweepMetrics)
};

inline const std::vector<std::string> kDefaultSweepMetrics = {
    "eval/*/accuracy", "eval/*/tool_use_rate", "train/reward/accuracy", "train_mean/tool/calls_per_trajectory",
    "train_mean/tool/error_rate", "run/step_s_mean"};

// Reads and checks a sweep file. Errors name FILE:LINE and the key: unknown keys, a grid value that
// is not a non-empty list, both or neither of grid and runs, two runs with one label.
Expected<SweepPlan> load_sweep(const std::filesystem::path& file);

// Whether `key` ("eval/aime24/accuracy") matches `pattern` ("eval/*/accuracy"): '*' stands for any
// text without '/'.
bool metric_matches(const std::string& pattern, const std::string& key);

}  // namespace torl::tools
