// What torl eval and torl train share: reading the config with its --set overrides, opening the
// tokenizer the config names, and the eval sets (jobs in, a table per data set out).
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "actors/trajectory.hpp"

#include "common/status.hpp"
#include "config/config.hpp"
#include "model/tokenizer.hpp"

namespace torl::actors {

// How a run (TrainingJob, run_eval) ended; the command maps it to its exit code (0, 2, 1).
enum class JobOutcome {
  kDone,      // the steps done, or stopped by request with a checkpoint of the last one
  kBadInput,  // a setting, the run folder or the checkpoint does not fit (said on the log)
  kFailed,    // a fault ended the run (said on the log; the last good checkpoint is kept)
};


Expected<config::Config> load_run_config(const std::string& file, const std::vector<std::string>& sets);

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

}  // namespace torl::actors
