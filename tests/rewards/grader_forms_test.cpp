// The forms in which models and datasets really write answers (issue #21): one test case per rule,
// each with the cases a too-generous rule would get wrong.
#include <doctest/doctest.h>

#include <string>

#include "rewards/answer.hpp"
#include "rewards/grader.hpp"
#include "tests/rewards/equivalence_checks.hpp"

namespace torl::rewards {
namespace {

using testing::different;
using testing::same;

TEST_SUITE("rewards") {
  TEST_CASE("a labelled answer gives its value: a name, a labelled ratio or an expression = the value") {
    same("5", "x = 5");
    same("7", "f(2) = 7");
    same("f(2) = 7", "7");
    same("20", "\\binom{6}{3} = 20");
    same("3", "\\log_3 27 = 3");
    same("2", "23 \\bmod 7 = 2");
    same("2", "23 \\mod 7 = 2");
    same("AB:CD = 2", "2");
    same("S_{\\triangle}:S = 3:8", "3:8");
    same("S_{\\triangle}:S = 3:8", "\\frac{3}{8}");
    same("V_{1}:V_{2}=11:21", "11:21");
    same("5", "5 = x");
    same("5", "\\overline{AB} = 5");
    same("5", "|AB| = 5");
    same("\\frac12", "\\sin\\theta = \\frac{1}{2}");
    same("12", "\\text{Area} = 12");        // a label in words
    same("12", "\\text{the area is } 12");
    different("12", "\\text{Area} = 13");
    different("12", "\\text{the area is } 21");
    // the value is the last part: a wrong value is wrong, however it is labelled
    different("5", "x = 6");
    different("20", "\\binom{6}{3} = 21");
    different("2", "23 \\bmod 7 = 3");
    different("AB:CD = 2", "3");
    // an equation whose left side is no label stays an equation
    different("1", "2x + z = 1");
    different("2x + z = 1", "1");
    different("0", "a + 3z = 0");
    different("y = 2x + 1", "y = 2x + 2");
    same("y = 2x + 1", "y - 2x = 1");
  }

  TEST_CASE("a chain of equalities compares by its ends") {
    same("5", "x = 2 + 3 = 5");
    same("z = 2", "z = 1 + 1 = 2");
    same("12", "3 \\cdot 4 = 12");
    different("6", "x = 2 + 3 = 5");
    different("z = 3", "z = 1 + 1 = 2");
  }

  TEST_CASE("ratios are their value; three-part ratios compare part by part") {
    same("3:8", "0.375");
    same("3:8", "6:16");
    same("1:2:3", "1 : 2 : 3");
    different("3:8", "8:3");
    different("1:2:3", "1:3:2");
  }

  TEST_CASE("transport damage is repaired: doubled backslashes, escapes read as control characters, stray backslashes") {
    same("\\frac{1}{2}", "\\\\frac{1}{2}");
    same("\\frac{\\pi}{4}", "\\\\frac{\\\\pi}{4}");
    same("\\sqrt{2}", "\\\\sqrt{2}");
    same("\\{1, 2\\}", "\\\\{1, 2\\\\}");
    same("42", "42\\");
    same("42", "42\\\\");
    same("\\frac{1}{2}", "\frac{1}{2}");      // "\f" read as a form feed
    same("2 \\times 3", "2 \times 3");         // "\t" read as a tab
    same("\\beta", "\beta");                   // "\b" as a backspace
    same("x \\neq 1", "x \neq 1");             // "\n" as a newline
    same("\\left(1, 2\\right)", "\\left(1, 2\right)");
    same("-5", "\u22125");
    same("12000", "12\u00a0000");
    // matrix rows stay rows; a doubled backslash before a non-command stays
    same("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\\\begin{pmatrix} 1 \\\\\\\\ 2 \\\\end{pmatrix}");
    different("\\begin{pmatrix} 1 & 2 \\end{pmatrix}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}");
    different("\\frac{1}{2}", "\\\\frac{1}{3}");
    // a newline followed by ordinary text is left alone
    CHECK(repair_transport("a\nb") == "a\nb");
    CHECK(repair_transport("\\frac{1}{2}") == "\\frac{1}{2}");
    CHECK(repair_transport(repair_transport("\\\\frac{1}{2}")) == "\\frac{1}{2}");
  }

  TEST_CASE("a decimal comma where it cannot be a thousands separator or a list") {
    same("3.75", "3,75");
    same("0.5", "0,5");
    same("\\frac{3}{4}", "0,75");
    same("-2.5", "-2,5");
    same("12.5\\%", "12,5%");
    same("1000", "1,000");  // three digits after the comma: thousands
    different("1.0", "1,000");
    different("3.75", "3,750");
    // gold is read as written: its "1,2" is a list
    different("1,2", "1.2");
    same("1,2", "2, 1");
    different("3.75", "3, 75");  // a space after the comma: a list
  }

  TEST_CASE("tuples with ';', sets of tuples in any order, and solution lists") {
    same("(1,2)", "(1;2)");
    same("(1,2),(3,4)", "(3;4),(1;2)");
    same("\\{(1,2),(3,4)\\}", "\\{(3,4),(1,2)\\}");
    same("\\{(1,2),(3,4)\\}", "(3,4),(1,2)");
    same("(1,3),(2,5)", "a=1,b=3; a=2,b=5");
    same("(1,3),(2,5)", "a=2,b=5; a=1,b=3");
    same("(1,3),(2,5)", "b=3,a=1; b=5,a=2");  // by name, not by position
    same("(2, 3)", "y = 3, x = 2");
    same("(1,2),(2,1)", "x = 1, y = 2 \\text{ or } x = 2, y = 1");
    different("(1,2),(2,1)", "x = 1, y = 2 \\text{ or } x = 2, y = 2");
    different("(1,3),(2,5)", "a=1,b=3; a=2,b=6");
    different("(1,3),(2,5)", "a=1,b=3");
    different("(1,2)", "(2;1)");
    different("(1,3),(2,5)", "a=1,b=3; a=2");  // a solution without its b
  }

  TEST_CASE("inequalities against intervals and unions of intervals") {
    same("[-5,-2) \\cup (2,5]", "2 < |x| \\le 5");
    same("2 < |x| \\le 5", "[-5,-2) \\cup (2,5]");
    same("(2,5] \\cup [-5,-2)", "2 < |x| \\le 5");
    same("(-1, 1)", "|x| < 1");
    same("(-\\infty, -3) \\cup (3, \\infty)", "|x| > 3");
    same("[1, 3]", "|x - 2| \\le 1");
    same("[1, 3]", "|2 - x| \\le 1");
    same("(-\\infty, 0) \\cup (0, \\infty)", "x \\ne 0");
    same("(-\\infty,-2) \\cup (3,\\infty)", "x < -2 \\text{ or } x > 3");
    same("(-2, 2)", "\\{x \\mid -2 < x < 2\\}");
    same("[1, \\infty)", "\\{x \\in \\mathbb{R} : x \\ge 1\\}");
    same("2 < |x| \\le 5", "-5 \\le x < -2 \\text{ or } 2 < x \\le 5");
    same("(-\\infty,1) \\cup (2,\\infty)", "x \\notin [1,2]");
    same("(-\\infty,1] \\cup (2,\\infty)", "x \\notin (1,2]");
    different("(-\\infty,1) \\cup (2,\\infty)", "x \\notin (1,2)");
    different("[-5,-2) \\cup (2,5]", "2 \\le |x| \\le 5");
    different("(-1, 1)", "|x| \\le 1");
    different("[1, 3]", "|x - 2| < 1");
    different("(-\\infty, 0) \\cup (0, \\infty)", "x \\ne 1");
    different("x < 3", "y < 3");  // the same interval, another unknown
    different("(-\\infty,-2) \\cup (3,\\infty)", "x < -2 \\text{ or } x > 4");
  }

  TEST_CASE("sums and products with subscripted symbols in any order") {
    same("a_1 + a_2", "a_2 + a_1");
    same("x_{1}x_{2}", "x_2 x_1");
    same("a_{n+1} + b_n", "b_n + a_{n + 1}");
    same("m_{total} g + F", "F + m_{total} g");
    same("v_{\\text{initial}} t", "t v_{initial}");
    different("a_1 + a_2", "a_1 + a_3");
    different("m_{total} g + F", "F + m_{total} h");
    different("v_{initial} t", "t v_{final}");
  }

  TEST_CASE("what cannot be decided within the work budget is 'not equivalent', and counted") {
    const uint64_t before = undecided_grades();
    different("10^{100000}", "10^{100000}+1");  // too big for exact arithmetic; long doubles would say equal
    CHECK(undecided_grades() == before + 1);
    different("9^{9^{9}}", "9^{9^{9}}+1");
    CHECK(undecided_grades() == before + 2);
    different("1 \\pm 1 \\pm 1 \\pm 1 \\pm 1 \\pm 1 \\pm 1 \\pm 1", "1 \\pm 1 \\pm 1 \\pm 1 \\pm 1 \\pm 1 \\pm 1 \\pm 2");
    CHECK(undecided_grades() == before + 3);
    // decided ones do not count, however big
    same("10^{100000}", "10^{100000}");
    different("2^{5000}", "2^{5000}+1");
    same("2^{100}", "1267650600228229401496703205376");
    CHECK(undecided_grades() == before + 3);
  }

  TEST_CASE("large reordered collections are matched without trying every order") {
    std::string ascending = "\\{", descending = "\\{", almost = "\\{";
    for (int i = 0; i < 300; ++i) {
      ascending += (i ? "," : "") + std::to_string(i);
      descending += (i ? "," : "") + std::to_string(299 - i);
      almost += (i ? "," : "") + std::to_string(i == 150 ? 1000 : i);
    }
    const uint64_t before = undecided_grades();
    same(ascending + "\\}", descending + "\\}");
    different(ascending + "\\}", almost + "\\}");
    // many alike items with one that matches nothing: backtracking would try 30! orders
    std::string ones = "\\{", ones_and_two = "\\{";
    for (int i = 0; i < 30; ++i) ones += "1,", ones_and_two += "1,";
    different(ones_and_two + "2\\}", ones + "1\\}");
    CHECK(undecided_grades() == before);
  }
}

}  // namespace
}  // namespace torl::rewards
