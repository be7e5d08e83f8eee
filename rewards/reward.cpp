// The reward rules of DESIGN.md §5. Two decisions beyond the header:
//  - The execution-error penalty is added to every trajectory whose code failed, correct answers
//    included. ToRL's reward table (paper §2, "Reward Design") lists it as a separate additive term
//    (correct +1 / wrong -1, code executable 0 / not executable -0.5), so a correct answer reached
//    through failing code scores 0.5, still above any wrong answer.
//  - An empty or blank \boxed{} counts as no answer: it commits to nothing, and under the -0.5
//    boxed-but-wrong variant it must not earn more than leaving the box out.
#include "rewards/reward.hpp"

#include "common/check.hpp"
#include "rewards/answer.hpp"
#include "rewards/grader.hpp"

namespace torl::rewards {

const char* outcome_name(Outcome outcome) {
  switch (outcome) {
    case Outcome::kCorrect: return "correct";
    case Outcome::kWrong: return "wrong";
    case Outcome::kNoAnswer: return "no_answer";
  }
  TORL_CHECK(false, "unknown Outcome " + std::to_string(static_cast<int>(outcome)));
  return "";
}

Score score_response(std::string_view response, std::string_view gold_answer,
                     const config::RewardConfig& reward, bool code_failed) {
  Score score;
  score.answer = extract_answer(response, reward.answer_fallbacks);
  const bool blank = !score.answer || score.answer->find_first_not_of(" \t\r\n") == std::string::npos;
  if (blank) {
    score.outcome = Outcome::kNoAnswer;
    score.reward = reward.no_answer;
  } else if (answers_equivalent(gold_answer, *score.answer)) {
    score.outcome = Outcome::kCorrect;
    score.reward = reward.correct;
  } else {
    score.outcome = Outcome::kWrong;
    score.reward = reward.wrong;
  }
  if (code_failed && reward.exec_error_penalty != 0) {
    score.reward += reward.exec_error_penalty;
    score.exec_error_penalized = true;
  }
  return score;
}

}  // namespace torl::rewards
