#include <doctest/doctest.h>

#include "tests/temp_dir.hpp"
#include "tools/sweep_plan.hpp"

namespace torl::tools {

TEST_SUITE("tools") {
  TEST_CASE("a sweep grid is every combination, the last key fastest, labelled by the keys' last parts") {
    testing::TempDir dir;
    const auto file = dir.write("sweeps/calls.yaml",
                                "base: ../base.yaml\n"
                                "set: {train: {steps: 3}, eval.max_problems: 4}\n"
                                "grid:\n"
                                "  tool.max_calls: [0, 2]\n"
                                "  run.seed: [1, 2, 3]\n"
                                "  data.eval_files: [[a.jsonl, b.jsonl]]\n");
    auto plan = load_sweep(file);
    REQUIRE_MESSAGE(plan.ok(), plan.status().message());
    CHECK(plan->name == "calls");
    CHECK(plan->base == dir.path() / "sweeps" / ".." / "base.yaml");
    CHECK(plan->sets == std::vector<std::string>{"train.steps=3", "eval.max_problems=4"});
    REQUIRE(plan->runs.size() == 6);
    CHECK(plan->runs[0].sets ==
          std::vector<std::string>{"tool.max_calls=0", "run.seed=1", "data.eval_files=[a.jsonl, b.jsonl]"});
    CHECK(plan->runs[1].label == "max_calls=0,seed=2,eval_files=[a.jsonl,_b.jsonl]");  // no spaces or slashes in folder names
    CHECK(plan->runs[5].label == "max_calls=2,seed=3,eval_files=[a.jsonl,_b.jsonl]");  // no spaces or slashes in folder names
    CHECK(plan->parallel == 1);
    CHECK(plan->metrics.empty());
  }

  TEST_CASE("a sweep list keeps each run's name, or labels it by its overrides") {
    testing::TempDir dir;
    const auto file = dir.write("f.yaml",
                                "base: b.yaml\nname: feedback\nparallel: 2\nmetrics: [eval/*/accuracy]\n"
                                "runs:\n  - {name: torl, tool.feedback: torl}\n  - {tool: {feedback: none}}\n");
    auto plan = load_sweep(file);
    REQUIRE_MESSAGE(plan.ok(), plan.status().message());
    CHECK(plan->name == "feedback");
    CHECK(plan->parallel == 2);
    REQUIRE(plan->runs.size() == 2);
    CHECK(plan->runs[0].label == "torl");
    CHECK(plan->runs[0].sets == std::vector<std::string>{"tool.feedback=torl"});
    CHECK(plan->runs[1].label == "feedback=none");
    const auto quoted = dir.write("q.yaml", "base: b.yaml\ngrid:\n  run.name: [\"a: b\", plain]\n");
    auto with_quotes = load_sweep(quoted);
    REQUIRE(with_quotes.ok());
    CHECK(with_quotes->runs[0].sets == std::vector<std::string>{"run.name=\"a: b\""});  // stays a string for --set
    CHECK(with_quotes->runs[1].sets == std::vector<std::string>{"run.name=plain"});
    CHECK(plan->metrics == std::vector<std::string>{"eval/*/accuracy"});
  }

  TEST_CASE("a bad sweep file is refused naming the file, the line and the key") {
    testing::TempDir dir;
    const auto check = [&](const std::string& text, const std::string& expected) {
      const auto file = dir.write("bad.yaml", text);
      auto plan = load_sweep(file);
      REQUIRE_FALSE(plan.ok());
      CHECK_MESSAGE(plan.status().message().find(expected) != std::string::npos, plan.status().message());
    };
    check("base: b.yaml\ngrid: {tool.max_calls: [0]}\nparalel: 2\n", "bad.yaml:3: paralel: unknown key");
    check("base: b.yaml\ngrid:\n  tool.max_calls: 1\n", "bad.yaml:3: grid.tool.max_calls: expected a non-empty list");
    check("base: b.yaml\n", "give exactly one of grid");
    check("grid: {a.b: [1]}\n", "base: missing");
    check("base: b.yaml\nruns:\n  - {name: x, a.b: 1}\n  - {name: x, a.b: 2}\n", "two runs are both named 'x'");
    check("base: b.yaml\nruns: [{a.b: 1}]\nparallel: 0\n", "bad.yaml:3: parallel: must be at least 1");
    check("base: [b.yaml\n", "bad.yaml:");
    CHECK(load_sweep(dir.path() / "missing.yaml").status().message().find("cannot read sweep file") != std::string::npos);
  }

  TEST_CASE("metric patterns: '*' matches one part of a summary key") {
    CHECK(metric_matches("eval/*/accuracy", "eval/aime24/accuracy"));
    CHECK_FALSE(metric_matches("eval/*/accuracy", "eval/aime24/tool_use_rate"));
    CHECK_FALSE(metric_matches("eval/*", "eval/aime24/accuracy"));
    CHECK(metric_matches("train/reward/accuracy", "train/reward/accuracy"));
    CHECK(metric_matches("train_mean/tool/*", "train_mean/tool/error_rate"));
    CHECK_FALSE(metric_matches("train/reward/accuracy", "train/reward/accuracy_x"));
  }
}

}  // namespace torl::tools
