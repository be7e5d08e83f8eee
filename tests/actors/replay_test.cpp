// Replay: a trajectory recorded through the tool protocol replays to the same tokens, calls and reward;
// a changed result, rule or record shows up as a difference that says where.
#include <doctest/doctest.h>

#include "actors/replay.hpp"
#include "rewards/reward.hpp"

namespace torl::actors {
namespace {

const model::Tokenizer& bytes() {
  static const model::Tokenizer tokenizer = model::Tokenizer::byte_level({"<eos>"});
  return tokenizer;
}

sandbox::ExecutionResult result(sandbox::ExecutionStatus status, std::string out, std::string err = "") {
  sandbox::ExecutionResult r;
  r.status = status;
  r.exit_code = status == sandbox::ExecutionStatus::kOk ? 0 : 1;
  r.stdout_text = std::move(out);
  r.stderr_text = std::move(err);
  r.wall_ms = 12.5;
  return r;
}

// The model's pieces, as the generator would hand them over, and the sandbox's answers: a void call
// (its "```output" is cut), a call that prints 42, a call that raises (C = 3 rounds spent), then text
// with "```output" that no longer stops, and the answer.
Trajectory record(const ToolLoop& loop) {
  const std::vector<std::pair<std::string, FinishReason>> pieces = {
      {"Let me see.\n```output", FinishReason::kStopString},
      {"\n```python\nprint(6*7)\n```\n```output", FinishReason::kStopString},
      {"Check:\n```python\n1/0\n```\n```output", FinishReason::kStopString},
      {"Ignore ```output here. So \\boxed{42}.", FinishReason::kEos}};
  std::vector<sandbox::ExecutionResult> results = {
      result(sandbox::ExecutionStatus::kOk, "42\n"),
      result(sandbox::ExecutionStatus::kError, "",
             "Traceback (most recent call last):\n  File \"<string>\", line 1\nZeroDivisionError: division by zero\n")};
  Trajectory t;
  t.job.id = 7;
  t.job.dataset = "unit";
  t.job.gold_answer = "42";
  t.job.prompt = {1, 2, 3};
  size_t next_result = 0;
  for (const auto& [text, stop] : pieces) {
    Segment s{t.id(), {}, {}, {}, stop, {}};
    for (const int32_t id : bytes().encode(text)) {
      s.tokens.push_back(id);
      s.logprobs.push_back(-0.25f);
      s.versions.push_back(1);
    }
    Decision d = loop.on_segment(t, s);
    while (d.kind == Decision::Kind::kExecute) d = loop.on_result(t, d.code, results.at(next_result++), 5.0);
  }
  t.score = rewards::score_response(t.text, t.job.gold_answer, config::RewardConfig{}, t.code_failed(config::ExecErrorRule::kTorl));
  return t;
}

const ToolLoop& torl_rules() {
  static const ToolLoop loop({.max_calls = 3, .feedback = config::ToolFeedback::kTorl, .max_response_tokens = 500}, bytes());
  return loop;
}

bool mentions(const std::vector<std::string>& lines, const std::string& text) {
  for (const std::string& line : lines) {
    if (line.find(text) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

TEST_SUITE("actors") {
  TEST_CASE("replay: the record replays to the same tokens, calls, void calls and reward") {
    const Trajectory recorded = record(torl_rules());
    REQUIRE(recorded.tool_calls.size() == 2);
    REQUIRE(recorded.void_calls == 1);
    REQUIRE(recorded.cuts.size() == 1);  // the void call's "```output": replay feeds it again
    REQUIRE(recorded.text.find("Let me see.\n\n```python") == 0);
    REQUIRE(recorded.score->outcome == rewards::Outcome::kCorrect);
    auto parsed = trajectory_from_json(to_json(recorded));
    REQUIRE_MESSAGE(parsed.ok(), parsed.status().message());
    CHECK(to_json(*parsed) == to_json(recorded));  // every recorded field survives the JSON round trip
    const Replay replay = replay_trajectory(*parsed, torl_rules(), config::RewardConfig{}, recorded_result);
    CHECK_MESSAGE(replay.differences.empty(), replay.differences.front());
    CHECK(replay.replayed.response == recorded.response);
    CHECK(replay.replayed.loss_mask == recorded.loss_mask);
    CHECK(replay.replayed.tool_calls[1].observation == recorded.tool_calls[1].observation);
    CHECK(replay.replayed.score->reward == recorded.score->reward);
  }

  TEST_CASE("replay: an altered recorded result is reported where the model would have seen it") {
    Json record_json = to_json(record(torl_rules()));
    record_json["tool_calls"][0]["stdout"] = "41\n";
    auto altered = trajectory_from_json(record_json);
    REQUIRE(altered.ok());
    const Replay replay = replay_trajectory(*altered, torl_rules(), config::RewardConfig{}, recorded_result);
    CHECK(mentions(replay.differences, "call 1 observation: recorded \"42\", replayed \"41\""));
    CHECK(mentions(replay.differences, "response: differs from token"));
    CHECK_FALSE(mentions(replay.differences, "call 2"));  // the second call is untouched
  }

  TEST_CASE("replay: a live result unlike the record, and other rules, are reported") {
    const Trajectory recorded = record(torl_rules());
    const ResultSource live = [](size_t index, const std::string&, const ToolCall* call) {
      return index == 0 ? result(sandbox::ExecutionStatus::kTimeout, "") : call->result;
    };
    const Replay timed_out = replay_trajectory(recorded, torl_rules(), config::RewardConfig{}, live);
    CHECK(mentions(timed_out.differences, "call 1 result: recorded status ok"));
    CHECK(mentions(timed_out.differences, "replayed status timeout"));

    const ToolLoop full({.max_calls = 3, .feedback = config::ToolFeedback::kFull, .max_response_tokens = 500}, bytes());
    const Replay shown_all = replay_trajectory(recorded, full, config::RewardConfig{}, recorded_result);
    CHECK(mentions(shown_all.differences, "call 2 observation: recorded \"ZeroDivisionError: division by zero\""));
    CHECK_FALSE(mentions(shown_all.differences, "call 1 observation"));

    const ToolLoop two_rounds({.max_calls = 2, .feedback = config::ToolFeedback::kTorl, .max_response_tokens = 500}, bytes());
    const Replay capped = replay_trajectory(recorded, two_rounds, config::RewardConfig{}, recorded_result);
    CHECK(mentions(capped.differences, "tool calls: recorded 2, replayed 1"));
    CHECK(capped.replayed.finish == FinishReason::kEos);
  }

  TEST_CASE("replay: a changed sampled token changes the answer and the reward, and says so") {
    Trajectory recorded = record(torl_rules());
    recorded.response[recorded.response.size() - 3] = bytes().encode("1")[0];  // \boxed{42} -> \boxed{12}
    const Replay replay = replay_trajectory(recorded, torl_rules(), config::RewardConfig{}, recorded_result);
    CHECK(mentions(replay.differences, "text: recorded"));
    CHECK(mentions(replay.differences, "reward: recorded 1.000000, replayed -1.000000"));
    CHECK(mentions(replay.differences, "outcome: recorded correct, replayed wrong"));
  }

  TEST_CASE("replay: code with a stray byte (invalid UTF-8, U+FFFD in the record) replays as recorded") {
    const ToolLoop& loop = torl_rules();
    Trajectory t;
    t.job.id = 9;
    t.job.gold_answer = "1";
    Segment s{t.id(), {}, {}, {}, FinishReason::kStopString, {}};
    for (const int32_t id : bytes().encode("```python\nprint(1) # \xff\n```\n```output")) {
      s.tokens.push_back(id);
      s.logprobs.push_back(-1.0f);
      s.versions.push_back(0);
    }
    Decision d = loop.on_segment(t, s);
    REQUIRE(d.kind == Decision::Kind::kExecute);
    CHECK(d.code.find('\xff') != std::string::npos);
    d = loop.on_result(t, d.code, result(sandbox::ExecutionStatus::kOk, "1\n"), 1.0);
    Segment end{t.id(), {}, {}, {}, FinishReason::kEos, {}};
    for (const int32_t id : bytes().encode("\\boxed{1}")) end.tokens.push_back(id), end.logprobs.push_back(-1.0f), end.versions.push_back(0);
    loop.on_segment(t, end);
    t.score = rewards::score_response(t.text, t.job.gold_answer, config::RewardConfig{}, t.code_failed(config::ExecErrorRule::kTorl));
    auto recorded = trajectory_from_json(Json::parse(to_jsonl_line(to_json(t))));  // as read from the trace
    REQUIRE(recorded.ok());
    CHECK(recorded->tool_calls[0].code != t.tool_calls[0].code);  // the byte did not survive JSON
    const Replay replay = replay_trajectory(*recorded, loop, config::RewardConfig{}, recorded_result);
    CHECK_MESSAGE(replay.differences.empty(), replay.differences.front());
    CHECK(replay.replayed.response == t.response);
  }

  TEST_CASE("replay: a trace recorded before void calls were cut replays unchanged by tool.void_calls: ignore") {
    const ToolLoop ignore({.max_calls = 2, .feedback = config::ToolFeedback::kTorl, .max_response_tokens = 500,
                           .void_calls = config::VoidCallRule::kIgnore},
                          bytes());
    Json old = to_json(record(ignore));
    old.erase("cuts");  // traces written before cuts existed have no such field
    auto recorded = trajectory_from_json(old);
    REQUIRE_MESSAGE(recorded.ok(), recorded.status().message());
    CHECK(recorded->text.find("Let me see.\n```output\n```python") == 0);  // the void call's "```output" stayed
    const Replay same = replay_trajectory(*recorded, ignore, config::RewardConfig{}, recorded_result);
    CHECK_MESSAGE(same.differences.empty(), same.differences.front());
    // by the default rule the void call spends a round and its "```output" goes: the replay says where
    const Replay cut = replay_trajectory(*recorded, torl_rules(), config::RewardConfig{}, recorded_result);
    CHECK(mentions(cut.differences, "response: differs from token 12"));
    CHECK(mentions(cut.differences, "cuts: recorded 0, replayed 1"));
  }

  TEST_CASE("replay: a record that is not a trajectory is refused naming the field") {
    Json broken = to_json(record(torl_rules()));
    broken.erase("loss_mask");
    CHECK(trajectory_from_json(broken).status().message().find("loss_mask") != std::string::npos);
    broken = to_json(record(torl_rules()));
    broken["finish"] = "sideways";
    CHECK(trajectory_from_json(broken).status().message().find("'finish': unknown value 'sideways'") != std::string::npos);
  }
}

}  // namespace torl::actors
