// The demo's problems (issue #9): small arithmetic tasks, deterministic by (seed, index), some where
// the Python interpreter helps a tiny model (multi-digit products, modular powers, sums of series,
// counting) and some where it does not (small sums and doublings). Each comes with its answer and the
// code that computes it, so that a synthetic corpus can show both ways of answering. Plain C++; any
// thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/json.hpp"

namespace torl::demo {

struct Task {
  std::string family;   // "product", "power_mod", "square_sum", "count_multiples", "sum", "double"
  std::string problem;  // the question, e.g. "What is 4821 * 7390?"
  std::string answer;   // e.g. "35627190"
  std::string code;     // Python that prints the answer
  bool tool_helps = false;
};

// Task `index` of the stream `seed`: the four hard families in turn, then an easy one (a sum or a
// doubling), with random operands. The code only copies numbers from the problem (it writes
// `range(1, 120 + 1)`, never `range(1, 121)`), so that a tiny model can write it.
Task make_task(uint64_t seed, int64_t index);

// {"id", "problem", "answer", "family", "tool_helps"}: a line of a data file that torl train/eval read.
Json to_json(const Task& task, const std::string& id);

// One response of the pre-training corpus for `task` (what follows "Assistant:\n"). It restates the
// problem (so that every sequence teaches the copying that writing code needs), then with the tool it
// writes the code, the ```output block with the result and the boxed answer; without it, it boxes an
// answer directly: right for the easy families, usually a near miss for the hard ones (a tiny model
// cannot multiply four-digit numbers in its head, and neither does the corpus).
std::string corpus_response(const Task& task, bool use_tool, uint64_t seed);

}  // namespace torl::demo
