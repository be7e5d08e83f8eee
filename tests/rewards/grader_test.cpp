// Positive and negative cases for every equivalence rule: each CHECK of `same` has a twin that must
// stay `different`, so that a grader which says yes to everything fails.
#include <doctest/doctest.h>

#include <string>

#include "rewards/expression.hpp"
#include "rewards/grader.hpp"
#include "tests/rewards/equivalence_checks.hpp"

namespace torl::rewards {
namespace {

using testing::different;
using testing::same;

TEST_SUITE("rewards") {
  TEST_CASE("answers equal after normalisation are equivalent") {
    same("\\frac{1}{2}", "\\dfrac{1}{2}");
    same("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})");
    same("x = 5", "5");
    same("10\\text{ cm}", "10");
    same("90^\\circ", "90");
    same("\\$42.50", "42.5");
    different("\\frac{1}{2}", "\\frac{1}{3}");
    different("", "");
  }

  TEST_CASE("integers compare exactly, however large") {
    same("10^{20}", "100000000000000000000");
    same("1,000,000", "10^6");
    same("2^{64}", "18446744073709551616");
    different("10^{20}", "10^{20}+1");
    different("18446744073709551616", "18446744073709551617");
    different("7", "-7");
  }

  TEST_CASE("decimals, fractions, mixed numbers, percent and scientific notation") {
    same("\\frac{1}{2}", "0.5");
    same("\\frac12", "1/2");
    same("3\\frac{1}{2}", "7/2");
    same("\\dfrac{9}{4}", "2.25");
    same("0.3333333", "\\frac13");
    same("50\\%", "0.5");
    same("50\\%", "50");
    same("1.5e-3", "0.0015");
    same("3 \\times 10^{5}", "300000");
    different("0.333333", "\\frac{1}{3}");  // relative error exactly 1e-6: not within
    different("3\\frac{1}{2}", "3/2");
    different("50\\%", "5");
    different("1.5e-3", "0.015");
    same("4 4/9", "40/9");  // a mixed number written plainly
    same("-1\\frac{1}{2}", "-\\frac{3}{2}");
    same("0.\\overline{36}", "\\frac{4}{11}");
    different("4 4/9", "16/9");
    different("16386.17", "16386.16");  // two terminating decimals compare exactly
    different("\\frac{1}{2004!}", "\\frac{1}{2006!}");
    different("e^{-30}", "e^{-31}");
  }

  TEST_CASE("what normalisation leaves is read the way people write it") {
    same("5", "\\boxed{5}");
    same("\\frac{70}{9}", "\\frac{70}{9} \\approx 7.78");
    same("11", "x \\approx 11");
    same("6 \\text{ and } 8", "6, 8");
    same("x \\le -1 \\text{ or } x \\ge 2", "(-\\infty,-1] \\cup [2,\\infty)");
    same("20", "20 \\text{ students}");
    same("\\text{(A) }5", "A");
    same("3s^2", "3*s**2");
    same("-3", "\u2212" "3");
    same("1000000", "1 000 000");
    different("\\pi", "\\approx 3.14");
    different("(A) 5", "B");
    different("7.6 Z", "7.6");
  }

  TEST_CASE("expressions are compared as mathematics") {
    same("\\sqrt{2}/2", "\\frac{1}{\\sqrt{2}}");
    same("2\\sqrt{3}", "\\sqrt{12}");
    same("x^2+2x+1", "(x+1)^2");
    same("\\sin^2 x + \\cos^2 x", "1");
    same("e^{i\\pi}", "-1");
    same("\\log_2 8", "3");
    same("\\sqrt[3]{8}", "2");
    same("\\sqrt[3]{-27}", "-3");
    same("5!", "120");
    same("\\binom{5}{2}", "10");
    same("2x", "2*x");
    same("xy", "yx");
    same("\\pi", "3.14159265358979");
    same("3+4i", "4i+3");
    same("\\frac{\\sqrt{3}}{2}", "\\sqrt{3}/2");
    same("\\frac{x+1}{x-1}", "1 + \\frac{2}{x-1}");
    different("1+1/e", "1-1/e");
    different("x^2+2x+1", "(x+1)^3");
    different("\\pi", "3.14");
    different("\\sqrt{2}", "1.41421");
    different("2\\sqrt{3}", "3\\sqrt{2}");
    different("\\log_2 8", "\\log_3 8");
    different("x^2", "y^2");
    same("\\cos 2x", "\\cos^2 x - \\sin^2 x");
    same("\\sqrt{-4}", "2i");
    same("(p,q)=(3,2)", "(3,2)");
    same("f(x) = 2x+1", "2x+1");
    same("f(x+1)", "f(1+x)");
    same("I(0)", "I(0)");
    different("I(0)", "-I(0)");
    different("I(0)", "0");
    same("x(x+1)", "x^2+x");  // a lower-case letter before "(" multiplies
  }

  TEST_CASE("tuples and points keep their order and brackets") {
    same("(1,2)", "(1, 2)");
    same("(3, 4)", "3, 4");
    different("(1,2)", "(2,1)");
    different("(1,2,3)", "(1,2)");
  }

  TEST_CASE("intervals: open and closed ends matter") {
    same("(-\\infty, 3]", "(-\\infty,3]");
    same("[1,2) \\cup (3,4]", "(3,4] \\cup [1,2)");
    same("x \\in [2, 5)", "[2,5)");
    same("(3, \\infty)", "x > 3");
    same("[1, 2)", "1 \\le x < 2");
    same("(-\\infty, 5]", "5 \\ge x");
    different("(3, \\infty)", "x \\ge 3");
    different("[1, 2)", "1 < x < 2");
    different("(0,9)", "[0,9)");
    different("(-\\infty, 3]", "(-\\infty,3)");
    different("[1,2) \\cup (3,4]", "[1,2) \\cup [3,4]");
  }

  TEST_CASE("sets and comma lists in any order") {
    same("1, 2", "2, 1");
    same("\\{1,2\\}", "\\{2,1\\}");
    same("\\{1, 2\\}", "1, 2");
    same("\\{5\\}", "5");
    different("1, 2", "1, 2, 3");
    different("\\{1,2\\}", "\\{1,3\\}");
  }

  TEST_CASE("plus-minus answers are the pair they stand for") {
    same("2 \\pm \\sqrt{3}", "2+\\sqrt{3}, 2-\\sqrt{3}");
    same("\\pm 3", "3, -3");
    different("2 \\pm \\sqrt{3}", "2+\\sqrt{3}");
    same("\\frac{-1 \\pm \\sqrt{13}}{4}", "\\frac{-1+\\sqrt{13}}{4}, \\frac{-1-\\sqrt{13}}{4}");
    different("\\frac{-1 \\pm \\sqrt{13}}{4}", "\\frac{-1+\\sqrt{13}}{4}, \\frac{1-\\sqrt{13}}{4}");
  }

  TEST_CASE("equations and inequalities") {
    same("y = 2x+1", "2x - y + 1 = 0");
    same("x < 3", "3 > x");
    same("x \\ge 2", "2 \\le x");
    same("2x \\le 6", "x \\le 3");
    different("y = 2x+1", "y = 2x+2");
    different("x \\le 3", "x < 3");
    different("x < 3", "x > 3");
    different("2x \\le 6", "-2x \\le -6");
  }

  TEST_CASE("matrices compare entry by entry") {
    same("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}");
    same("\\begin{pmatrix} \\frac12 \\\\ 2 \\end{pmatrix}", "\\begin{bmatrix} 0.5 \\\\ 2 \\end{bmatrix}");
    different("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix} 2 \\\\ 1 \\end{pmatrix}");
    different("\\begin{pmatrix} 1 & 2 \\end{pmatrix}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}");
  }

  TEST_CASE("text answers compare without case") {
    same("Odd", "odd");
    same("\\text{Monday}", "monday");
    same("\\text{(C)}", "(C)");
    different("Monday", "Tuesday");
    different("\\text{even}", "\\text{odd}");
    different("MR=SRMC", "MR=-SRMC");  // words, but a sign is never ignored
    different("SRMC", "-SRMC");
  }

  TEST_CASE("the parser keeps structure and precedence") {
    CHECK(to_string(**parse_answer("1+2x^2")) == "(add 1 (mul 2 (pow x 2)))");
    CHECK(to_string(**parse_answer("(0,9]")) == "(tuple:(] 0 9)");
    CHECK(to_string(**parse_answer("-3!")) == "(neg (fact 3))");
    CHECK_FALSE(parse_answer("\\unknowncommand{3}").has_value());
    CHECK_FALSE(parse_answer("(1, 2").has_value());
    CHECK_FALSE(parse_answer(std::string(1000, '(') + "1" + std::string(1000, ')')).has_value());  // too deep
    CHECK_FALSE(parse_answer(std::string(5000, '1')).has_value());  // too long
    CHECK(parse_answer(std::string(150, '(') + "1" + std::string(150, ')')).has_value());
  }

  TEST_CASE("grade_texts uses the last box, or the whole text") {
    const Grade grade = grade_texts("$\\frac{1}{2}$", "so \\boxed{1} then \\boxed{0.5}.");
    CHECK(grade.equivalent);
    CHECK(grade.gold_answer == "\\frac{1}{2}");
    CHECK(grade.pred_answer == "0.5");
    CHECK_FALSE(grade_texts("2", "\\boxed{3}").equivalent);
  }
}

}  // namespace
}  // namespace torl::rewards
