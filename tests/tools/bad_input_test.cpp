// Bad input from the command line and config files (issue #24): each is refused with exit 2 and a
// message that names what to change; nothing is allocated, written or run first.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>

#include "actors/trajectory.hpp"
#include "common/json.hpp"
#include "tests/temp_dir.hpp"
#include "tests/tools/command_run.hpp"

namespace torl::tools {
namespace {

using Run = testing::CommandRun;

const std::string kSource = TORL_SOURCE_DIR;
const std::string kShared = kSource + "/../shared";

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// torl eval of the fixture config with `sets` added, into `dir`.
Run eval_fixture(const testing::TempDir& dir, std::vector<std::string> sets) {
  Args args = {kSource + "/config/examples/fixture-eval.yaml", "--set", "model.path=" + kShared + "/fixtures/tiny-qwen2",
               "--set", "data.eval_files=[" + kShared + "/data/aime24.jsonl]", "--set",
               "run.output_dir=" + dir.path().string()};
  for (const auto& set : sets) args.insert(args.end(), {"--set", set});
  return testing::run_command(eval_command, args);
}

TEST_SUITE("tools") {
  TEST_CASE("sizes past the model's positions or the machine's memory are refused, naming the settings") {
    testing::TempDir dir;
    const Run long_response = eval_fixture(dir, {"rollout.max_response_tokens=1000000000"});
    CHECK(long_response.code == 2);
    CHECK_MESSAGE(contains(long_response.err, "512 positions the model supports (max_position_embeddings)"), long_response.err);
    CHECK(contains(long_response.err, "rollout.max_response_tokens = 1000000000"));

    const Run long_prompt = eval_fixture(dir, {"data.max_prompt_tokens=2000000"});
    CHECK(long_prompt.code == 2);
    CHECK(contains(long_prompt.err, "data.max_prompt_tokens = 2000000"));

    const Run wide = eval_fixture(dir, {"rollout.max_batch=100000000"});
    CHECK(wide.code == 2);
    CHECK_MESSAGE(contains(wide.err, "this machine has free"), wide.err);
    CHECK(contains(wide.err, "rollout.max_batch = 100000000"));
    CHECK_FALSE(std::filesystem::exists(dir.path() / "fixture-eval" / "eval"));  // nothing written

    const std::string model = kShared + "/fixtures/tiny-qwen2";
    const Run many_tokens = testing::run_command(
        generate_command, {"--model", model, "--byte-level", "--prompt", "hi", "--max-new-tokens", "1000000000"});
    CHECK(many_tokens.code == 2);
    CHECK(contains(many_tokens.err, "--max-new-tokens (1000000000)"));
  }

  TEST_CASE("sampling settings that mean nothing are refused") {
    const std::string model = kShared + "/fixtures/tiny-qwen2";
    for (const Args& extra : std::vector<Args>{{"--temperature", "nan"}, {"--temperature", "inf"}, {"--temperature", "-1"},
                                               {"--top-k", "-3"}, {"--top-p", "nan"}, {"--top-p", "0"}}) {
      Args args = {"--model", model, "--byte-level", "--prompt", "hi"};
      args.insert(args.end(), extra.begin(), extra.end());
      const Run run = testing::run_command(generate_command, args);
      CHECK_MESSAGE(run.code == 2, extra[0] << " " << extra[1] << ": " << run.err);
    }
  }

  TEST_CASE("run.name stays one folder inside run.output_dir") {
    for (const std::string name : {"../../escape", "", ".", "..", "a/b", "a\\\\b"}) {
      const Run run = testing::run_command(
          config_command, {"check", kSource + "/config/examples/fixture-eval.yaml", "--set", "run.name=" + name});
      CHECK_MESSAGE(run.code == 2, "run.name=" << name);
      CHECK(contains(run.out + run.err, "run.name: must name one folder inside run.output_dir"));
    }
    const Run fine = testing::run_command(
        config_command, {"check", kSource + "/config/examples/fixture-eval.yaml", "--set", "run.name=sweep-1.a_b"});
    CHECK(fine.code == 0);
  }

  TEST_CASE("an empty data set is an error naming the file") {
    testing::TempDir dir;
    const auto empty = dir.write("empty.jsonl", "\n");
    const Run run = eval_fixture(dir, {"data.eval_files=[" + empty.string() + "]"});
    CHECK(run.code == 2);
    CHECK_MESSAGE(contains(run.err, empty.string() + ": no problems (the data set is empty)"), run.err);
  }

  TEST_CASE("two evals written to their own --output folders keep their own traces") {
    testing::TempDir dir;
    for (const char* name : {"first", "second"}) {
      const std::string output = (dir.path() / "evals" / name).string();
      Args args = {kSource + "/config/examples/fixture-eval.yaml", "--set", "model.path=" + kShared + "/fixtures/tiny-qwen2",
                   "--set", "data.eval_files=[" + kShared + "/data/aime24.jsonl]", "--set", "eval.max_problems=2",
                   "--set", "run.output_dir=" + dir.path().string(), "--set", "trace.enabled=true", "--output", output};
      const Run run = testing::run_command(eval_command, args);
      REQUIRE_MESSAGE(run.code == 0, run.err);
    }
    CHECK(std::filesystem::exists(dir.path() / "evals" / "first" / "trace" / "trajectories.jsonl"));
    CHECK(std::filesystem::exists(dir.path() / "evals" / "second" / "trace" / "trajectories.jsonl"));
    CHECK_FALSE(std::filesystem::exists(dir.path() / "evals" / "trace"));  // the shared parent's, where both went
  }

  TEST_CASE("torl detokenize refuses ids outside the vocabulary") {
    testing::TempDir dir;
    const auto ids = dir.write("ids.jsonl", "{\"ids\": [14990]}\n{\"ids\": [14990, 999999999]}\n");
    const Run run = testing::run_command(
        detokenize_command, {"--tokenizer", kShared + "/fixtures/qwen-tokenizer", "--jsonl", ids.string()});
    CHECK(run.code == 2);
    CHECK(run.out == "{\"text\":\"hello\"}\n");
    CHECK_MESSAGE(contains(run.err, ids.string() + ":2: token id 999999999 is not in the vocabulary"), run.err);
  }

  TEST_CASE("torl replay names a missing trace, an empty or garbled record, and a wrongly typed field") {
    testing::TempDir dir;
    const Run missing = testing::run_command(replay_command, {(dir.path() / "nope").string()});
    CHECK(missing.code == 2);
    CHECK(contains(missing.err, "does not exist"));

    const auto empty = dir.write("empty/trajectories.jsonl", "");
    const Run none = testing::run_command(replay_command, {empty.string()});
    CHECK(none.code == 2);
    CHECK(contains(none.err, "no trajectories in " + empty.string()));

    const auto garbage = dir.write("garbage/trajectories.jsonl", "garbage\n");
    const Run garbled = testing::run_command(replay_command, {garbage.string()});
    CHECK(garbled.code == 2);
    CHECK(contains(garbled.err, garbage.string() + ":1: invalid JSON"));

    Json record = actors::to_json(actors::Trajectory{});
    record["sample"] = "three";
    const auto typed = dir.write("typed/trajectories.jsonl", record.dump() + "\n");
    const Run wrong = testing::run_command(replay_command, {typed.string()});
    CHECK(wrong.code == 2);
    CHECK_MESSAGE(contains(wrong.err, typed.string() + ":1: not a recorded trajectory: field 'sample': "), wrong.err);
  }
}

}  // namespace
}  // namespace torl::tools
