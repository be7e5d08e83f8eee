// Math equivalence of two final answers (DESIGN.md §5): equal after normalisation, then numbers
// (integers exactly, others within relative 1e-6), then expressions (exactly where the arithmetic is
// rational, otherwise at random points), then structures (tuples and intervals with their brackets,
// sets and comma lists in any order, equations and inequalities, matrices, ±), then text. Pure
// functions; any thread.
#pragma once

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

// `torl grade` semantics: each text's last \boxed{} is its answer, else the whole text (answer.hpp).
Grade grade_texts(std::string_view gold_text, std::string_view pred_text);

}  // namespace torl::rewards
