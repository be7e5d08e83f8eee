#include <doctest/doctest.h>

#include "rewards/reward.hpp"

namespace torl::rewards {
namespace {

config::RewardConfig paper_config() { return {}; }  // +1 correct, -1 wrong, -1 no answer, no penalty

config::RewardConfig penalty_config() {
  config::RewardConfig config;
  config.exec_error_penalty = -0.5;
  return config;
}

TEST_SUITE("rewards") {
  TEST_CASE("outcome names are the strings the metrics use") {
    CHECK(std::string(outcome_name(Outcome::kCorrect)) == "correct");
    CHECK(std::string(outcome_name(Outcome::kWrong)) == "wrong");
    CHECK(std::string(outcome_name(Outcome::kNoAnswer)) == "no_answer");
  }

  TEST_CASE("a boxed answer equivalent to the gold answer scores +1") {
    const Score score = score_response("2 + 3 = 5, so the answer is \\boxed{5}.", "5", paper_config(), false);
    CHECK(score.outcome == Outcome::kCorrect);
    CHECK(score.reward == doctest::Approx(1.0));
    REQUIRE(score.answer.has_value());
    CHECK(*score.answer == "5");
    CHECK_FALSE(score.exec_error_penalized);
  }

  TEST_CASE("a boxed wrong answer scores -1") {
    const Score score = score_response("so \\boxed{6}", "5", paper_config(), false);
    CHECK(score.outcome == Outcome::kWrong);
    CHECK(score.reward == doctest::Approx(-1.0));
    REQUIRE(score.answer.has_value());
    CHECK(*score.answer == "6");
  }

  TEST_CASE("only the last \\boxed{} counts") {
    const std::string response = "first \\boxed{5}, on reflection \\boxed{6}";
    CHECK(score_response(response, "6", paper_config(), false).outcome == Outcome::kCorrect);
    CHECK(score_response(response, "5", paper_config(), false).outcome == Outcome::kWrong);
  }

  TEST_CASE("a response without \\boxed{} scores no_answer with no extracted answer") {
    const Score score = score_response("The result is 5.", "5", paper_config(), false);
    CHECK(score.outcome == Outcome::kNoAnswer);
    CHECK(score.reward == doctest::Approx(-1.0));
    CHECK_FALSE(score.answer.has_value());
    CHECK_FALSE(score.exec_error_penalized);
  }

  TEST_CASE("an empty \\boxed{} counts as no answer, not as a wrong one") {
    config::RewardConfig config;
    config.wrong = -0.5;
    const Score score = score_response("\\boxed{ }", "5", config, false);
    CHECK(score.outcome == Outcome::kNoAnswer);
    CHECK(score.reward == doctest::Approx(-1.0));
  }

  TEST_CASE("the -0.5 variant scores a boxed wrong answer above a missing one") {
    config::RewardConfig config;
    config.wrong = -0.5;
    CHECK(score_response("\\boxed{5}", "5", config, false).reward == doctest::Approx(1.0));
    const Score wrong = score_response("\\boxed{6}", "5", config, false);
    CHECK(wrong.outcome == Outcome::kWrong);
    CHECK(wrong.reward == doctest::Approx(-0.5));
    const Score none = score_response("maybe 5", "5", config, false);
    CHECK(none.outcome == Outcome::kNoAnswer);
    CHECK(none.reward == doctest::Approx(-1.0));
  }

  TEST_CASE("the configured values are used as given") {
    config::RewardConfig config;
    config.correct = 2.0;
    config.wrong = -0.25;
    config.no_answer = -3.0;
    CHECK(score_response("\\boxed{5}", "5", config, false).reward == doctest::Approx(2.0));
    CHECK(score_response("\\boxed{4}", "5", config, false).reward == doctest::Approx(-0.25));
    CHECK(score_response("5", "5", config, false).reward == doctest::Approx(-3.0));
  }

  TEST_CASE("the execution-error penalty is added to every trajectory whose code failed") {
    const auto config = penalty_config();
    const Score correct = score_response("\\boxed{5}", "5", config, true);
    CHECK(correct.outcome == Outcome::kCorrect);
    CHECK(correct.reward == doctest::Approx(0.5));
    CHECK(correct.exec_error_penalized);

    const Score wrong = score_response("\\boxed{6}", "5", config, true);
    CHECK(wrong.outcome == Outcome::kWrong);
    CHECK(wrong.reward == doctest::Approx(-1.5));
    CHECK(wrong.exec_error_penalized);

    const Score none = score_response("no idea", "5", config, true);
    CHECK(none.outcome == Outcome::kNoAnswer);
    CHECK(none.reward == doctest::Approx(-1.5));
    CHECK(none.exec_error_penalized);
  }

  TEST_CASE("the penalty never hits a trajectory whose code did not fail or that ran no code") {
    const auto config = penalty_config();
    const std::string with_code = "```python\nprint(2 + 3)\n```\n```output\n5\n```\nso \\boxed{5}";
    const Score ran_fine = score_response(with_code, "5", config, false);
    CHECK(ran_fine.reward == doctest::Approx(1.0));
    CHECK_FALSE(ran_fine.exec_error_penalized);

    // The reference implementation's defect: a text-only answer was penalised as if its code failed.
    const Score no_code = score_response("2 + 3 = 5, so \\boxed{6}", "5", config, false);
    CHECK(no_code.reward == doctest::Approx(-1.0));
    CHECK_FALSE(no_code.exec_error_penalized);
    const Score no_code_no_box = score_response("2 + 3 = 5", "5", config, false);
    CHECK(no_code_no_box.reward == doctest::Approx(-1.0));
    CHECK_FALSE(no_code_no_box.exec_error_penalized);
  }

  TEST_CASE("with a zero penalty, failed code changes nothing and is not reported as penalised") {
    const Score score = score_response("\\boxed{5}", "5", paper_config(), true);
    CHECK(score.reward == doctest::Approx(1.0));
    CHECK_FALSE(score.exec_error_penalized);
  }

  TEST_CASE("fallback phrases count only when answer_fallbacks is on") {
    const std::string response = "Adding them gives 5. The answer is 5.";
    const Score off = score_response(response, "5", paper_config(), false);
    CHECK(off.outcome == Outcome::kNoAnswer);
    CHECK(off.reward == doctest::Approx(-1.0));
    CHECK_FALSE(off.answer.has_value());

    config::RewardConfig config;
    config.answer_fallbacks = true;
    const Score on = score_response(response, "5", config, false);
    CHECK(on.outcome == Outcome::kCorrect);
    CHECK(on.reward == doctest::Approx(1.0));
    REQUIRE(on.answer.has_value());
    CHECK(*on.answer == "5");
  }

  TEST_CASE("with fallbacks on, a \\boxed{} still wins over a fallback phrase") {
    config::RewardConfig config;
    config.answer_fallbacks = true;
    const Score score = score_response("The answer is 5. Checking again: \\boxed{6}", "5", config, false);
    CHECK(score.outcome == Outcome::kWrong);
    REQUIRE(score.answer.has_value());
    CHECK(*score.answer == "6");
  }
}

}  // namespace
}  // namespace torl::rewards
