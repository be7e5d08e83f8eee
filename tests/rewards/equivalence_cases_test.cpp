// 719 answer pairs across categories (integers, decimals, fractions, percent, units, radicals,
// expressions, equations, intervals, sets, ±, matrices, multiple choice, text, and near misses that
// must stay different), written for torl in the style of other checkers' public suites. Every pair
// must be judged as labelled, except the known gaps below, each with its reason.
#include <doctest/doctest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "rewards/grader.hpp"

namespace torl::rewards {
namespace {

// Pairs torl still gets wrong, as "gold | pred", with why. Remove a line when its case is fixed.
const std::set<std::string> kKnownGaps = {
    "\\begin{pmatrix}6 & 8 \\\\ 10 & 12\\end{pmatrix} | \\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix} + "
    "\\begin{pmatrix}5 & 6 \\\\ 7 & 8\\end{pmatrix}",  // no matrix arithmetic
    "\\begin{pmatrix} 2 & 0 \\\\ 0 & 2\\end{pmatrix} | 2\\begin{pmatrix} 1&0\\\\0&1\\end{pmatrix}",  // nor scalar times matrix
    "50 \\text{ km} | 50 \\text{ m}",  // units are removed from both sides, never compared
    "\\sin 30^\\circ | \\frac12",     // degree marks inside a function argument are dropped,
    "\\cos 60^\\circ | 0.5",            //   so the argument is read in radians
    "\\tan 45^{\\circ} | 1",
};

TEST_SUITE("rewards") {
  TEST_CASE("the equivalence cases are judged as labelled, but for the known gaps") {
    const std::string path = std::string(TORL_SOURCE_DIR) + "/tests/rewards/equivalence_cases.tsv";
    std::ifstream in(path);
    REQUIRE_MESSAGE(in, "cannot open " << path);
    int checked = 0, skipped = 0, wrong = 0;
    std::string line;
    for (int line_no = 1; std::getline(in, line); ++line_no) {
      std::istringstream fields(line);
      std::string gold, pred, expected, category;
      const bool complete = std::getline(fields, gold, '\t') && std::getline(fields, pred, '\t') &&
                            std::getline(fields, expected, '\t') && std::getline(fields, category, '\t');
      REQUIRE_MESSAGE(complete, path << ":" << line_no << ": expected gold, pred, expected, category");
      if (kKnownGaps.count(gold + " | " + pred)) {
        ++skipped;
        continue;
      }
      ++checked;
      const bool got = answers_equivalent(gold, pred);
      if (got != (expected == "1")) {
        ++wrong;
        MESSAGE(path << ":" << line_no << " [" << category << "] " << gold << " | " << pred << ": expected "
                     << expected << ", got " << got);
      }
    }
    MESSAGE(checked << " pairs checked, " << skipped << " known gaps skipped");
    CHECK(checked >= 700);
    CHECK(wrong == 0);
  }
}

}  // namespace
}  // namespace torl::rewards
