#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "common/json.hpp"
#include "rewards/answer.hpp"

namespace torl::rewards {
namespace {

// The 500 MATH500 rows from ../shared/data; fails the test with a hint when the data is missing.
std::vector<Json> load_math500() {
  const std::string path = std::string(TORL_SOURCE_DIR) + "/../shared/data/math500.jsonl";
  auto rows = read_jsonl(path);
  if (!rows.ok()) {
    FAIL("shared data missing: " << rows.status().message()
                                 << " (the MATH500 fixture must be at ../shared/data/math500.jsonl "
                                    "next to the project root)");
  }
  REQUIRE(rows->size() == 500);
  return *std::move(rows);
}

std::string field(const Json& row, const char* key) {
  const auto value = required_field<std::string>(row, key, "math500.jsonl");
  REQUIRE_MESSAGE(value.ok(), value.status().message());
  return *value;
}

TEST_SUITE("rewards") {
  // ---- extract_boxed ----

  TEST_CASE("the last boxed answer is extracted with its nested braces") {
    CHECK(extract_boxed(R"(so \boxed{1} or rather \boxed{\frac{a{b}c}{2}}.)") ==
          R"(\frac{a{b}c}{2})");
    CHECK(extract_boxed(R"($\boxed{a{b}c}$)") == "a{b}c");
    CHECK(extract_boxed(R"(\boxed{}$)") == "");
    CHECK(extract_boxed(R"(\boxed{\boxed{7}})") == "7");
  }

  TEST_CASE("a box may have a space before its brace, be one token, or be an fbox") {
    CHECK(extract_boxed(R"(\boxed {x+1} done)") == "x+1");
    CHECK(extract_boxed(R"(is $\boxed 5$.)") == "5");
    CHECK(extract_boxed("is \\boxed 42 apples") == "42");
    CHECK(extract_boxed(R"(\fbox{3,4})") == "3,4");
    CHECK(extract_boxed(R"(\fbox{1} then \boxed{2})") == "2");
    CHECK(extract_boxed(R"(\boxed{1} then \fbox{2})") == "2");
  }

  TEST_CASE("there is no boxed answer without a box or when the last box is not closed") {
    CHECK_FALSE(extract_boxed("the answer is 5").has_value());
    CHECK_FALSE(extract_boxed("").has_value());
    // Cut off inside its final box: the earlier box is not the answer the model settled on.
    CHECK_FALSE(extract_boxed(R"(\boxed{1} no wait \boxed{\frac{2}{3})").has_value());
    CHECK_FALSE(extract_boxed(R"(at the end \boxed)").has_value());
    CHECK_FALSE(extract_boxed(R"(\boxed $)").has_value());
  }

  TEST_CASE("escaped braces do not nest and longer command names are not boxes") {
    CHECK(extract_boxed(R"(\boxed{\left\{ 1 \right.})") == R"(\left\{ 1 \right.)");
    CHECK(extract_boxed(R"(\boxed{\{1,2\}})") == R"(\{1,2\})");
    CHECK(extract_boxed(R"(\boxed{3} and \boxedx{4})") == "3");
    CHECK(extract_boxed(R"(\fbox{3} \fboxsep=2pt)") == "3");
  }

  // ---- extract_answer and answer_from_text ----

  TEST_CASE("answer phrases are read only when fallbacks are on, and the last one wins") {
    const std::string text = "The answer is 3. Hmm, so the final answer is $\\frac{1}{2}$. Done";
    CHECK_FALSE(extract_answer(text, false).has_value());
    CHECK(extract_answer(text, true) == R"(\frac{1}{2})");
    CHECK(extract_answer("Final Answer: 3.5\nI hope it is correct.", true) == "3.5");
    CHECK(extract_answer("**Answer:** \\(x^2\\)", true) == "x^2");
    CHECK(extract_answer("the answer is 12.", true) == "12");
    CHECK(extract_answer("the answer is \\boxed{7}", false) == "7");
    CHECK(extract_answer("we answered quickly", true) == std::nullopt);
    CHECK(extract_answer("answer is", true) == std::nullopt);
  }

  TEST_CASE("a grade answer is the last box, else the whole text without outer math delimiters") {
    CHECK(answer_from_text(R"(x \boxed{1} y \boxed{2} z)") == "2");
    CHECK(answer_from_text("  $\\frac{1}{2}$ \n") == R"(\frac{1}{2})");
    CHECK(answer_from_text("$$x+1$$") == "x+1");
    CHECK(answer_from_text(R"(\(3\))") == "3");
    CHECK(answer_from_text(R"(\[ 4 \])") == "4");
    CHECK(answer_from_text("$a$ and $b$") == "$a$ and $b$");
    CHECK(answer_from_text(" 17 ") == "17");
  }

  // ---- normalize_answer, one rule at a time ----

  TEST_CASE("math delimiters are removed, outer or not") {
    CHECK(normalize_answer("$5$") == "5");
    CHECK(normalize_answer(R"(\( \frac{1}{2} \))") == R"(\frac{1}{2})");
    CHECK(normalize_answer(R"(\[x^2\])") == "x^2");
    CHECK(normalize_answer("$5$ cm") == "5");
    CHECK(normalize_answer(R"(\(x\) = \(3\))") == "3");
    // A line break followed by a bracket is not a delimiter.
    CHECK(normalize_answer(R"(\begin{matrix} 1 \\[2pt] 2 \end{matrix})") ==
          R"(\begin{matrix} 1 \\[2pt] 2 \end{matrix})");
  }

  TEST_CASE("sized delimiters lose their size commands but keep their brackets") {
    CHECK(normalize_answer(R"(\left( 3, \frac{\pi}{2} \right))") == R"(( 3, \frac{\pi}{2} ))");
    CHECK(normalize_answer(R"(\left[0,1\right))") == "[0,1)");
    CHECK(normalize_answer(R"(\left\{1,2\right\})") == R"(\{1,2\})");
    CHECK(normalize_answer(R"(\left\lbrace 1 \right\rbrace)") == R"(\{ 1 \})");
    CHECK(normalize_answer(R"(\bigl(1,2\bigr])") == "(1,2]");
    CHECK(normalize_answer(R"(\Big|x\Big|)") == "|x|");
    CHECK(normalize_answer(R"(\left. \frac{1}{2} \right.)") == R"(\frac{1}{2})");
    // Arrows only start with "left"/"right".
    CHECK(normalize_answer(R"(x \rightarrow 1)") == R"(x \rightarrow 1)");
    CHECK(normalize_answer(R"(A \Leftrightarrow B)") == R"(A \Leftrightarrow B)");
  }

  TEST_CASE("spacing commands and whitespace collapse to single spaces") {
    CHECK(normalize_answer(R"(2\!\sqrt{3})") == R"(2\sqrt{3})");
    CHECK(normalize_answer(R"(1\,+\;2\:+\ 3)") == "1 + 2 + 3");
    CHECK(normalize_answer("a\\quad b \\qquad c") == "a b c");
    CHECK(normalize_answer("1~2") == "1 2");
    CHECK(normalize_answer("  x \t+\n  1  ") == "x + 1");
    CHECK(normalize_answer(R"(\displaystyle\frac{1}{2})") == R"(\frac{1}{2})");
  }

  TEST_CASE("a removed spacing command does not glue a command name to a letter") {
    CHECK(normalize_answer(R"(2\pi\!r)") == R"(2\pi r)");
    CHECK(normalize_answer(R"(\pi\text{r})") == R"(\pi r)");
    CHECK(normalize_answer(R"(\pi\!2)") == R"(\pi2)");
  }

  TEST_CASE("fraction, binomial and comparison commands take one spelling") {
    CHECK(normalize_answer(R"(\dfrac{1}{2}+\tfrac34)") == R"(\frac{1}{2}+\frac34)");
    CHECK(normalize_answer(R"(\dbinom{5}{2})") == R"(\binom{5}{2})");
    CHECK(normalize_answer(R"(x \leq 3)") == R"(x \le 3)");
    CHECK(normalize_answer(R"(x \leqslant 3)") == R"(x \le 3)");
    CHECK(normalize_answer(R"(x \geq 3)") == R"(x \ge 3)");
    CHECK(normalize_answer(R"(x \geqslant 3)") == R"(x \ge 3)");
    CHECK(normalize_answer(R"(x \neq 3)") == R"(x \ne 3)");
    CHECK(normalize_answer(R"(x \le 3)") == R"(x \le 3)");
    // Commands that merely start like these are different commands.
    CHECK(normalize_answer(R"(\left\lfloor x \right\rfloor)") == R"(\lfloor x \rfloor)");
    CHECK(normalize_answer(R"(\neg p)") == R"(\neg p)");
  }

  TEST_CASE("text and font wrappers become their content") {
    CHECK(normalize_answer(R"(\text{(C)})") == "(C)");
    CHECK(normalize_answer(R"(\textbf{Monday})") == "Monday");
    CHECK(normalize_answer(R"(\mathrm{east})") == "east");
    CHECK(normalize_answer(R"(\mathbf{v})") == "v");
    CHECK(normalize_answer(R"(\mbox{odd})") == "odd");
    CHECK(normalize_answer(R"(\operatorname{lcm}(2,3))") == "lcm(2,3)");
    CHECK(normalize_answer(R"(\text {yes})") == "yes");
    CHECK(normalize_answer(R"(\text{a {b} c})") == "a {b} c");
    // Not a font: \mathbb{R} is a different object from R.
    CHECK(normalize_answer(R"(\mathbb{R})") == R"(\mathbb{R})");
  }

  TEST_CASE("a trailing unit after a quantity is removed") {
    CHECK(normalize_answer("10 cm") == "10");
    CHECK(normalize_answer("10cm") == "10");
    CHECK(normalize_answer(R"(5\text{ inches})") == "5");
    CHECK(normalize_answer(R"(4 \mbox{ cm}^2)") == "4");
    CHECK(normalize_answer(R"(864 \mbox{ inches}^2)") == "864");
    CHECK(normalize_answer("30 degrees") == "30");
    CHECK(normalize_answer(R"(\frac{270}7\text{ degrees})") == R"(\frac{270}7)");
    CHECK(normalize_answer(R"(5.4 \text{ cents})") == "5.4");
    CHECK(normalize_answer("12 square feet") == "12");
    CHECK(normalize_answer("60 miles per hour") == "60");
    CHECK(normalize_answer(R"(2\sqrt{2} \text{ m})") == R"(2\sqrt{2})");
    CHECK(normalize_answer(R"(3\pi \text{ cm}^{2})") == R"(3\pi)");
    CHECK(normalize_answer(R"(\frac{\pi}{2} radians)") == R"(\frac{\pi}{2})");
    CHECK(normalize_answer("20 Dollars.") == "20");
  }

  TEST_CASE("words that are not a unit after a quantity are kept") {
    CHECK(normalize_answer("Monday") == "Monday");
    CHECK(normalize_answer(R"(\text{cm})") == "cm");
    CHECK(normalize_answer("the second") == "the second");
    CHECK(normalize_answer("x cm") == "x cm");
    CHECK(normalize_answer("5 m") == "5 m");  // a bare one-letter unit may be a variable
    CHECK(normalize_answer("2 in") == "2 in");
    CHECK(normalize_answer("3R^2") == "3R^2");
    CHECK(normalize_answer("2k") == "2k");
    CHECK(normalize_answer("5 per") == "5 per");
    CHECK(normalize_answer("xcm") == "xcm");
    CHECK(normalize_answer("10 apples") == "10 apples");
    CHECK(normalize_answer(R"(5\min)") == R"(5\min)");  // a command, not the word "min"
    CHECK(normalize_answer(R"(2\sec)") == R"(2\sec)");
  }

  TEST_CASE("degree marks are removed, with a Celsius or Fahrenheit letter after them") {
    CHECK(normalize_answer(R"(90^\circ)") == "90");
    CHECK(normalize_answer(R"(90^{\circ})") == "90");
    CHECK(normalize_answer(R"(90^{ \circ })") == "90");
    CHECK(normalize_answer(R"(30^\circ, 60^\circ)") == "30, 60");
    CHECK(normalize_answer(R"(45\degree)") == "45");
    CHECK(normalize_answer("45°") == "45");
    CHECK(normalize_answer(R"(100^\circ C)") == "100");
    CHECK(normalize_answer(R"(212^\circ \text{F})") == "212");
    // Composition and a C that is not after a degree mark stay.
    CHECK(normalize_answer(R"(f \circ g)") == R"(f \circ g)");
    CHECK(normalize_answer(R"(x^\circ + C)") == "x + C");
    CHECK(normalize_answer("100 C") == "100 C");
  }

  TEST_CASE("dollar signs go and percent stays as one trailing percent sign") {
    CHECK(normalize_answer(R"(\$42.50)") == "42.50");
    CHECK(normalize_answer(R"(\$ 36)") == "36");
    CHECK(normalize_answer("42 dollars") == "42");
    CHECK(normalize_answer(R"(50\%)") == "50%");
    CHECK(normalize_answer(R"(50 \%)") == "50%");
    CHECK(normalize_answer("50%%") == "50%");
    CHECK(normalize_answer(R"(12.5\text{ percent})") == "12.5%");
    CHECK(normalize_answer("50") == "50");
    CHECK(normalize_answer("%") == "%");
    CHECK(normalize_answer("a percent") == "a percent");
  }

  TEST_CASE("a trailing period, comma or line break is removed") {
    CHECK(normalize_answer("5.") == "5");
    CHECK(normalize_answer(R"(\frac{1}{2}.)") == R"(\frac{1}{2})");
    CHECK(normalize_answer("5 cm.") == "5");
    CHECK(normalize_answer("1, 2,") == "1, 2");
    CHECK(normalize_answer(R"(7 \\)") == "7");
    CHECK(normalize_answer("1, 2, ...") == "1, 2, ...");
    CHECK(normalize_answer("5.0") == "5.0");
    CHECK(normalize_answer(".5") == ".5");
  }

  TEST_CASE("a leading single-variable assignment is removed only when its right side is a value") {
    CHECK(normalize_answer("x = 5") == "5");
    CHECK(normalize_answer("k=3") == "3");
    CHECK(normalize_answer(R"(a = \frac{1}{2})") == R"(\frac{1}{2})");
    CHECK(normalize_answer(R"(x = \frac{\sqrt{3}}{2})") == R"(\frac{\sqrt{3}}{2})");
    CHECK(normalize_answer(R"(\theta = \frac{\pi}{4})") == R"(\frac{\pi}{4})");
    CHECK(normalize_answer("z = 1 + 2i") == "1 + 2i");
    CHECK(normalize_answer("x_1 = -3") == "-3");
    CHECK(normalize_answer(R"(x = 5 \text{ cm})") == "5");
    // Equations whose right side names a variable are answers in their own right.
    CHECK(normalize_answer("y = 2x + 1") == "y = 2x + 1");
    CHECK(normalize_answer(R"(y = 2\alpha)") == R"(y = 2\alpha)");
    CHECK(normalize_answer("x = 2, y = 3") == "x = 2, y = 3");
    CHECK(normalize_answer("x = y = 5") == "x = y = 5");
    CHECK(normalize_answer("AB = 5") == "AB = 5");
    CHECK(normalize_answer("2x = 4") == "2x = 4");
    CHECK(normalize_answer("x == 4") == "x == 4");
    CHECK(normalize_answer(R"(x \le 5)") == R"(x \le 5)");
    CHECK(normalize_answer("p - q") == "p - q");
  }

  TEST_CASE("thousands separators are removed from plain numbers only") {
    CHECK(normalize_answer("1,000,000") == "1000000");
    CHECK(normalize_answer("12,345.67") == "12345.67");
    CHECK(normalize_answer("-1,000") == "-1000");
    CHECK(normalize_answer("1,000%") == "1000%");
    CHECK(normalize_answer(R"(1{,}000)") == "1000");
    CHECK(normalize_answer(R"((1{,}000, 2))") == "(1000, 2)");
    CHECK(normalize_answer(R"(10,\!080)") == "10080");
    CHECK(normalize_answer(R"(11,\! 111,\! 111,\! 100)") == "11111111100");
    CHECK(normalize_answer(R"(10\,000)") == "10000");
    CHECK(normalize_answer(R"(\$32,\!348)") == "32348");
    // Lists, tuples and other comma uses keep their commas.
    CHECK(normalize_answer("(1,000)") == "(1,000)");
    CHECK(normalize_answer("1,2,3") == "1,2,3");
    CHECK(normalize_answer("1,0000") == "1,0000");
    CHECK(normalize_answer("1234,567") == "1234,567");
    CHECK(normalize_answer("1, 000") == "1, 000");
    CHECK(normalize_answer(R"(1{,}2)") == "1,2");
    CHECK(normalize_answer(R"(\{1,{,}\})") == R"(\{1,,\})");
    CHECK(normalize_answer(R"(\{,})") == R"(\{,})");  // an escaped brace opens no group
  }

  TEST_CASE("normalisation never changes the mathematics") {
    for (const char* kept : {"(0,9)",
                             "[0,9)",
                             "1,2,3",
                             "x^2+1",
                             "y = 2x + 1",
                             R"(\frac{1}{2})",
                             R"(10^{20}+1)",
                             R"(1+\frac{1}{e})",
                             R"(1-\frac{1}{e})",
                             R"((-\infty, 2) \cup (3, \infty))",
                             R"(\{1\pm\sqrt{5},-2\})",
                             R"(\sqrt[3]{2})",
                             "204_5",
                             R"(\begin{pmatrix} 1 \\ 2 \end{pmatrix})",
                             R"(x \in [-2,7])",
                             "-2,1",
                             R"(\cot x)",
                             "3.14",
                             "0.5",
                             "2k+2"}) {
      CAPTURE(kept);
      CHECK(normalize_answer(kept) == kept);
    }
  }

  TEST_CASE("normalisation is idempotent on the tricky cases") {
    for (const char* answer :
         {R"(\left( 3, \frac{\pi}{2} \right).)", R"(x = 5 \text{ cm}^2)", R"(100^\circ C)",
          R"(\$1{,}000.)", R"(12.5\text{ percent})", R"(2\pi\!r)", R"(\text{x} = 1,000)",
          R"(5\text{ m})", "60 miles per hour", R"(\text{(B)} \\)", "50 %", R"(\mathrm{ft})",
          "{{,}}", R"(\{,})", R"(\le\quad°ft)", R"(\(\{000\) \text{)", R"(\text{\sq$}cm)",
          "\xC2$\xB0", R"(\°!0)"}) {
      CAPTURE(answer);
      const std::string once = normalize_answer(answer);
      CHECK(normalize_answer(once) == once);
    }
  }

  // ---- the MATH500 fixture ----

  TEST_CASE("every MATH500 solution has a closed last box") {
    for (const Json& row : load_math500()) {
      const auto boxed = extract_boxed(field(row, "solution"));
      CAPTURE(field(row, "id"));
      REQUIRE(boxed.has_value());
      CHECK_FALSE(boxed->empty());
    }
  }

  TEST_CASE("the last box of every MATH500 solution normalises like its answer") {
    for (const Json& row : load_math500()) {
      const auto boxed = extract_boxed(field(row, "solution"));
      CAPTURE(field(row, "id"));
      REQUIRE(boxed.has_value());
      CHECK(normalize_answer(*boxed) == normalize_answer(field(row, "answer")));
    }
  }

  TEST_CASE("normalize_answer is idempotent on every MATH500 answer") {
    for (const Json& row : load_math500()) {
      const std::string answer = field(row, "answer");
      const std::string once = normalize_answer(answer);
      CAPTURE(answer);
      CHECK(normalize_answer(once) == once);
    }
  }
}

}  // namespace
}  // namespace torl::rewards
