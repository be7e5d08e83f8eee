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

  TEST_CASE("torl grade bench times each kind of the shipped mix and finds every verdict as the file expects") {
    const std::string mix = std::string(TORL_SOURCE_DIR) + "/data/grade-mix.jsonl";
    const Run run = grade({"bench", "--file", mix, "--repeat", "1"});
    CHECK_MESSAGE(run.code == 0, run.out << run.err);
    for (const char* kind : {"identical", "fraction_decimal", "dfrac_frac", "reordered_sets", "labelled", "intervals",
                             "symbolic", "big_numbers", "transport", "text_choice", "mix"}) {
      CHECK_MESSAGE(run.out.find("\n" + std::string(kind) + " ") != std::string::npos, kind << " missing in\n" << run.out);
    }
    CHECK(run.out.find("slowest pair: ") != std::string::npos);
    CHECK(run.out.find("not as expected") == std::string::npos);
  }

  TEST_CASE("torl grade bench fails on a verdict the file does not expect, and names bad rows") {
    testing::TempDir dir;
    const auto wrong = dir.write("wrong.jsonl",
                                 "{\"kind\": \"a\", \"gold\": \"1/2\", \"pred\": \"0.5\", \"expected\": true}\n"
                                 "{\"kind\": \"b\", \"gold\": \"2\", \"pred\": \"3\", \"expected\": true}\n");
    const Run run = grade({"bench", "--file", wrong.string(), "--repeat", "1"});
    CHECK(run.code == 1);
    CHECK(run.out.find("not as expected (equivalent): line 2 (gold '2', pred '3')") != std::string::npos);
    const auto bad = dir.write("bad.jsonl", "{\"gold\": \"1\", \"pred\": \"1\", \"expected\": \"yes\"}\n");
    const Run refused = grade({"bench", "--file", bad.string()});
    CHECK(refused.code == 2);
    CHECK(refused.err.find(bad.string() + ":1: field 'expected' must be a boolean") != std::string::npos);
    CHECK(grade({"bench", "--repeat", "0"}).code == 2);
  }

  TEST_CASE("torl grade refuses bad arguments with exit 2") {
    CHECK(grade({}).code == 2);
    CHECK(grade({"--gold", "1"}).code == 2);
    CHECK(grade({"--jsonl", "/nonexistent/pairs.jsonl"}).code == 2);
  }
}

}  // namespace
}  // namespace torl::tools
