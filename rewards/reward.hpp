// The reward of one finished trajectory (DESIGN.md §5): correct, wrong or no answer, with values from
// the config's reward section, and the execution-error penalty for trajectories whose code failed.
// Pure function; any thread (the Reward actor calls it).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"

namespace torl::rewards {

enum class Outcome { kCorrect, kWrong, kNoAnswer };

const char* outcome_name(Outcome outcome);  // "correct", "wrong", "no_answer"

struct Score {
  double reward = 0;
  Outcome outcome = Outcome::kNoAnswer;
  std::optional<std::string> answer;  // what was extracted from the response
  bool exec_error_penalized = false;  // exec_error_penalty was added
};

// Scores `response` (the model's text, tool outputs included) against `gold_answer`. `code_failed`:
// the trajectory's code failed by reward.exec_error_rule (actors' Trajectory::code_failed), never
// true for a response that ran no code. The penalty applies only then.
Score score_response(std::string_view response, std::string_view gold_answer,
                     const config::RewardConfig& reward, bool code_failed);

}  // namespace torl::rewards
