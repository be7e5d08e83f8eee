// The demo's tasks: deterministic, with answers that their own code prints, and a corpus whose direct
// answers are right for the easy families and mostly wrong for the hard ones.
#include "demo/tasks.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <map>

namespace torl::demo {
namespace {

// Runs `code` with Debian's Python and returns what it printed.
std::string python_prints(const std::string& code) {
  const std::string command = "/usr/bin/python3 -c '" + code + "'";
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE_MESSAGE(pipe, "cannot run /usr/bin/python3");
  std::string out;
  char buffer[256];
  while (size_t n = std::fread(buffer, 1, sizeof(buffer), pipe)) out.append(buffer, n);
  ::pclose(pipe);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace

TEST_SUITE("demo") {
  TEST_CASE("tasks are deterministic by (seed, index) and differ between seeds") {
    for (int64_t i = 0; i < 12; ++i) {
      CHECK(make_task(3, i).problem == make_task(3, i).problem);
      CHECK(make_task(3, i).answer == make_task(3, i).answer);
    }
    int differ = 0;
    for (int64_t i = 0; i < 12; ++i) differ += make_task(3, i).problem != make_task(4, i).problem;
    CHECK(differ >= 10);
  }

  TEST_CASE("every family's answer is what its code prints") {
    std::map<std::string, int> families;
    for (int64_t i = 0; i < 30; ++i) {
      const Task t = make_task(11, i);
      ++families[t.family];
      CHECK_MESSAGE(python_prints(t.code) == t.answer, t.problem << " -> " << t.code);
    }
    CHECK(families.size() == 6);
    CHECK(make_task(11, 0).tool_helps);
    CHECK_FALSE(make_task(11, 4).tool_helps);
  }

  TEST_CASE("corpus: the tool solution shows the code and its output; direct answers miss the hard ones") {
    const Task hard = make_task(5, 0), easy = make_task(5, 4);
    CHECK(corpus_response(hard, true, 1) == "We need to answer: " + hard.problem + "\nLet me compute it.\n```python\n" +
                                                hard.code + "\n```\n```output\n" + hard.answer +
                                                "\n```\nThe answer is \\boxed{" + hard.answer + "}.");
    CHECK(corpus_response(easy, false, 1) == "We need to answer: " + easy.problem + "\nThe answer is \\boxed{" + easy.answer + "}.");
    int right = 0;
    for (uint64_t s = 0; s < 200; ++s) {
      right += corpus_response(hard, false, s) == "We need to answer: " + hard.problem + "\nThe answer is \\boxed{" + hard.answer + "}.";
    }
    CHECK(right > 2);
    CHECK(right < 25);  // about 5%
  }
}

}  // namespace torl::demo
