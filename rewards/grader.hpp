// Math equivalence of two final answers (DESIGN.md §5): equal after normalisation, then numbers
// (integers exactly, others within relative 1e-6), then expressions (exactly where the arithmetic is
// rational, otherwise at random points), then structures (tuples and intervals with their brackets,
// sets and comma lists in any order, equations and inequalities, matrices, ±), then text. Also:
// a labelled value against the value ("x = 5", "f(2) = 7", "\binom{6}{3} = 20", "AB:CD = 2", chains
// "x = 2 + 3 = 5"; an equation whose left side is no name and no number stays an equation), ratios
// as their value, conditions in one unknown against intervals ("2 < |x| \le 5", "x \ne 0", lists of
// conditions as "or"), solutions "a=1, b=3" against tuples, a decimal comma in the prediction where
// gold is one number, and transport damage (repair_transport). Each comparison has a work budget;
// past it the answer is "not equivalent", counted. Any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace torl::rewards {

// Whether `pred` (an extracted answer) means the same as `gold`. Symmetric in practice, but `gold`
// is trusted to be well formed: where a form is ambiguous, gold's reading is used.
bool answers_equivalent(std::string_view gold, std::string_view pred);

struct Grade {
  bool equivalent = false;
  std::string gold_answer;  // what was compared: answer_from_text of each text
  std::string pred_answer;
};

// How many calls of answers_equivalent in this process could not decide and answered "not
// equivalent": the comparison ran out of its work budget (counted steps, not time: a few
// milliseconds at most) or met numbers too big for exact arithmetic (10^{100000} against
// 10^{100000}+1), which floating point would wrongly call equal.
uint64_t undecided_grades();

// `torl grade` semantics: each text's last \boxed{} is its answer, else the whole text (answer.hpp).
Grade grade_texts(std::string_view gold_text, std::string_view pred_text);

}  // namespace torl::rewards
