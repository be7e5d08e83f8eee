// The grader's speed (torl grade bench): answers_equivalent on one thread over answer pairs grouped
// by kind, each kind timed on its own, with the slowest single pair and the verdicts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace torl::rewards {

struct BenchPair {
  std::string gold;               // answers as compared (already extracted from their texts)
  std::string pred;
  std::string kind;               // the group it is timed in ("" groups as "all")
  std::optional<bool> expected;   // the verdict it should get, where the file says
  size_t line = 0;                // where it came from, for reports
};

struct KindSpeed {
  std::string kind;
  size_t pairs = 0;
  size_t equivalent = 0;
  double grades_per_second = 0;     // median over the rounds
  double slowest_us = 0;            // the slowest pair's median time over 3 single grades
  const BenchPair* slowest = nullptr;
};

struct GradeBenchResult {
  std::vector<KindSpeed> kinds;     // in the order the kinds first appear
  KindSpeed all;                    // every pair graded once per pass: the mix as the file has it
  int rounds = 0;
  long grades = 0;                  // timed grades in all rounds
  std::vector<const BenchPair*> different;   // pairs graded "not equivalent"
  std::vector<const BenchPair*> unexpected;  // pairs whose verdict is not their `expected`
  uint64_t undecided = 0;           // pairs the grader could not decide (undecided_grades)
  bool stable = true;               // every pass gave every pair the same verdict
};

// Grades every pair once for its verdict, times each pair alone (3 times) for the slowest, then
// `rounds` timed rounds in which each kind is graded in passes for at least `seconds_per_kind`.
// Rates are medians over the rounds; the mix's rate is pairs / the sum of the kinds' pass times.
GradeBenchResult run_grade_bench(const std::vector<BenchPair>& pairs, int rounds, double seconds_per_kind);

}  // namespace torl::rewards
