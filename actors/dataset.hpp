// Problems from JSONL data sets, and the prompt text the model sees (DESIGN.md §3). Used by the
// driver's callers (torl eval, torl train) to make RolloutJobs. Pure functions; any thread.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "common/status.hpp"
#include "config/config.hpp"

namespace torl::actors {

struct Problem {
  std::string dataset;   // the file's stem, e.g. "aime24"
  int64_t index = 0;     // line order in the file, from 0
  std::string id;        // the "id" field when present
  std::string problem;
  std::string answer;
};

// Reads `file` (one JSON object per line with data.prompt_key and data.answer_key; numbers are
// accepted as answers). `max_problems` > 0 keeps the first ones. Errors name FILE:LINE and the key.
Expected<std::vector<Problem>> load_problems(const std::filesystem::path& file, const config::DataConfig& data,
                                             int max_problems);

// The prompt text for `problem`: ToRL's template (data.template: torl) or the problem as is (raw).
std::string format_prompt(config::PromptTemplate prompt_template, const std::string& problem);

}  // namespace torl::actors
