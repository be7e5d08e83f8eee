// What torl eval and torl train share: reading the config with its --set overrides, opening the
// tokenizer the config names, and the eval sets (jobs in, a table per data set out).
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "actors/trajectory.hpp"

#include "common/status.hpp"
#include "config/config.hpp"
#include "model/modelled_lm.hpp"
#include "model/tokenizer.hpp"

namespace torl::tools {

Expected<config::Config> load_run_config(const std::string& file, const std::vector<std::string>& sets);
// The same for the benches, which use the rollout, tool and reward sections alone: model.path and the
// data files are not required.
Expected<config::Config> load_bench_config(const std::string& file, const std::vector<std::string>& sets);

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

// model.byte_level_tokenizer, else model.tokenizer, else the tokenizer.json in model.path. Errors start
// with the key.
Expected<model::Tokenizer> load_run_tokenizer(const config::Config& config);

// One eval set's results.
struct DatasetRow {
  std::string name;  // the file's stem
  int64_t problems = 0, skipped = 0;  // problems rolled out; left out as longer than data.max_prompt_tokens
  int64_t samples = 0, correct = 0, with_tool = 0, tool_calls = 0, tool_errors = 0, response_tokens = 0;
};

// Jobs for every problem of data.eval_files, eval.samples each (eval.temperature, eval.top_p), with ids
// from first_id; one row per file in `rows`. Errors name FILE:LINE.
Expected<std::vector<actors::RolloutJob>> eval_jobs(const config::Config& config, const model::Tokenizer& tokenizer,
                                                    int64_t first_id, std::vector<DatasetRow>& rows);

// Adds a finished eval trajectory to its data set's row.
void count(std::vector<DatasetRow>& rows, const actors::Trajectory& trajectory);

// | data set | problems | samples | accuracy | tool calls / answer | tool error rate | response tokens |
void print_table(const std::vector<DatasetRow>& rows, std::ostream& out);

// accuracy, tool_use_rate, tool_calls_per_answer, tool_error_rate, response_tokens and the counts.
Json to_json(const DatasetRow& row);

}  // namespace torl::tools
