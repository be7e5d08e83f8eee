#include <doctest/doctest.h>

#include "tests/temp_dir.hpp"
#include "tests/tools/command_run.hpp"

namespace torl::tools {
namespace {

using Run = testing::CommandRun;

Run grade(const Args& args) { return testing::run_command(grade_command, args); }

TEST_SUITE("tools") {
  TEST_CASE("torl grade compares the last boxed answers and says which") {
    const Run same = grade({"--gold", "$\\frac{1}{2}$", "--pred", "first \\boxed{1}, finally \\boxed{0.5}"});
    CHECK(same.code == 0);
    CHECK(same.out == "equivalent\n  gold: \\frac{1}{2}\n  pred: 0.5\n");
    const Run different = grade({"--gold", "(0,9)", "--pred", "\\boxed{[0,9)}"});
    CHECK(different.code == 1);
    CHECK(different.out.rfind("different\n", 0) == 0);
  }

  TEST_CASE("torl grade --jsonl grades every good line in order and names every bad one") {
    testing::TempDir dir;
    const auto file = dir.write("pairs.jsonl",
                                "{\"gold\": \"1/2\", \"pred\": \"\\\\boxed{0.5}\"}\n"
                                "not json\n"
                                "{\"gold\": \"3\", \"pred\": 4}\n"
                                "{\"gold\": \"(0,9)\", \"pred\": \"[0,9)\"}\n");
    const Run run = grade({"--jsonl", file.string()});
    CHECK(run.code == 2);
    CHECK(run.out ==
          "{\"equivalent\":true,\"pred_answer\":\"0.5\",\"gold_answer\":\"1/2\"}\n"
          "{\"equivalent\":false,\"pred_answer\":\"[0,9)\",\"gold_answer\":\"(0,9)\"}\n");
    CHECK(run.err.find(file.string() + ":2: invalid JSON") != std::string::npos);
    CHECK(run.err.find(file.string() + ":3: field 'pred' must be a string (got number)") != std::string::npos);
  }

  TEST_CASE("torl grade refuses bad arguments with exit 2") {
    CHECK(grade({}).code == 2);
    CHECK(grade({"--gold", "1"}).code == 2);
    CHECK(grade({"--jsonl", "/nonexistent/pairs.jsonl"}).code == 2);
  }
}

}  // namespace
}  // namespace torl::tools
