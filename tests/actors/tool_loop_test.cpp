// The tool protocol on one trajectory, without actors: masks, the C limit, void calls, cuts at the
// stop string, sandbox faults, the budget.
#include <doctest/doctest.h>

#include "actors/tool_loop.hpp"

namespace torl::actors {
namespace {

const model::Tokenizer& bytes() {
  static const model::Tokenizer tokenizer = model::Tokenizer::byte_level({"<eos>"});
  return tokenizer;
}

// Bytes, plus tokens that hold several bytes as a real BPE vocabulary does: the token completing
// "```output" may carry more text, or "```output" may start inside a token.
const model::Tokenizer& merged() {
  static const model::Tokenizer tokenizer = model::Tokenizer::byte_level({"<eos>", "```outputs", "output\n\nx", "d\n```"});
  return tokenizer;
}

int32_t id_of(std::string_view token) { return *merged().token_id(token); }

Segment segment_of(std::vector<int32_t> ids, FinishReason stop) {
  Segment s;
  s.tokens = std::move(ids);
  s.logprobs.assign(s.tokens.size(), -0.5f);
  s.versions.assign(s.tokens.size(), 3);
  s.stop = stop;
  return s;
}

Segment segment(std::string_view text, FinishReason stop) { return segment_of(bytes().encode(text), stop); }

// Byte tokens of `text` followed by `more`.
std::vector<int32_t> tokens(std::string_view text, std::vector<int32_t> more = {}) {
  std::vector<int32_t> ids = bytes().encode(text);
  ids.insert(ids.end(), more.begin(), more.end());
  return ids;
}

std::string text_of(const std::vector<int32_t>& ids) { return merged().decode(ids); }

ToolLoop rules(int max_calls, config::VoidCallRule void_calls = config::VoidCallRule::kTorl,
               const model::Tokenizer& tokenizer = bytes()) {
  return ToolLoop({.max_calls = max_calls, .feedback = config::ToolFeedback::kTorl, .max_response_tokens = 500,
                   .void_calls = void_calls},
                  tokenizer);
}

sandbox::ExecutionResult ok(std::string out) {
  sandbox::ExecutionResult r;
  r.status = sandbox::ExecutionStatus::kOk;
  r.exit_code = 0;
  r.stdout_text = std::move(out);
  return r;
}

TEST_SUITE("actors") {
  TEST_CASE("a closed python block before ```output is executed and its output appended with mask 0") {
    const ToolLoop loop({.max_calls = 2, .feedback = config::ToolFeedback::kTorl, .max_response_tokens = 500}, bytes());
    Trajectory t;
    const std::string first = "Compute.\n```python\nprint(6*7)\n```\n```output";
    Decision d = loop.on_segment(t, segment(first, FinishReason::kStopString));
    REQUIRE(d.kind == Decision::Kind::kExecute);
    CHECK(d.code == "print(6*7)\n");
    d = loop.on_result(t, d.code, ok("42\n"), 3.0);
    REQUIRE(d.kind == Decision::Kind::kContinue);
    CHECK(bytes().decode(d.tokens) == "\n42\n```\n");
    CHECK(d.stop_strings);  // one call of two made
    CHECK(d.max_new_tokens == 500 - static_cast<int64_t>(t.response.size()));
    d = loop.on_segment(t, segment("So \\boxed{42}.", FinishReason::kEos));
    CHECK(d.kind == Decision::Kind::kFinish);
    CHECK(t.finish == FinishReason::kEos);
    CHECK(t.text == first + "\n42\n```\nSo \\boxed{42}.");
    // token by token: the model's text 1, the tool text 0
    const size_t tool_start = first.size(), tool_end = tool_start + 8;
    REQUIRE(t.loss_mask.size() == t.text.size());
    for (size_t i = 0; i < t.loss_mask.size(); ++i) {
      const bool tool = i >= tool_start && i < tool_end;
      CHECK(t.loss_mask[i] == (tool ? 0 : 1));
      CHECK(t.versions[i] == (tool ? -1 : 3));
      CHECK(t.logprobs[i] == (tool ? 0.0f : -0.5f));
    }
    REQUIRE(t.tool_calls.size() == 1);
    CHECK(t.tool_calls[0].response_offset == static_cast<int64_t>(tool_start));
    CHECK(t.tool_calls[0].tool_tokens == 8);
    CHECK(t.tool_calls[0].observation == "42");
  }

  TEST_CASE("after the C-th execution generation continues without the stop string") {
    const ToolLoop loop({.max_calls = 1, .feedback = config::ToolFeedback::kTorl, .max_response_tokens = 500}, bytes());
    Trajectory t;
    Decision d = loop.on_segment(t, segment("```python\nprint(1)\n```\n```output", FinishReason::kStopString));
    REQUIRE(d.kind == Decision::Kind::kExecute);
    d = loop.on_result(t, d.code, ok("1\n"), 1.0);
    REQUIRE(d.kind == Decision::Kind::kContinue);
    CHECK_FALSE(d.stop_strings);
    CHECK(loop.initial_stop_strings() == std::vector<std::string>{"```output"});
    const ToolLoop none({.max_calls = 0}, bytes());
    CHECK(none.initial_stop_strings().empty());
  }

  TEST_CASE("a void call spends a round; its \"```output\" leaves the context and the trajectory, token by token") {
    const ToolLoop loop = rules(1);
    Trajectory t;
    const std::string before = "```python\nprint(1)\n";  // the block is never closed: nothing to run
    Decision d = loop.on_segment(t, segment(before + "```output", FinishReason::kStopString));
    REQUIRE(d.kind == Decision::Kind::kContinue);
    CHECK(d.drop == 9);            // the engine takes back the nine byte tokens of "```output"
    CHECK(d.tokens.empty());       // the text before it ends a line already
    CHECK_FALSE(d.stop_strings);   // C = 1 is spent
    CHECK(t.void_calls == 1);
    CHECK(t.tool_calls.empty());
    CHECK(loop.rounds(t) == 1);
    CHECK(text_of(t.response) == before);
    CHECK(t.loss_mask == std::vector<uint8_t>(before.size(), 1));
    REQUIRE(t.cuts.size() == 1);
    CHECK(t.cuts[0].void_call);
    CHECK(t.cuts[0].response_offset == static_cast<int64_t>(before.size()));
    CHECK(text_of(t.cuts[0].tokens) == "```output");
    CHECK(t.cuts[0].logprobs == std::vector<float>(9, -0.5f));
    CHECK(t.cuts[0].kept_tokens == 0);
    // generation goes on without stop strings; a made-up output is just text, trained on as such
    d = loop.on_segment(t, segment("Done: \\boxed{1}", FinishReason::kEos));
    CHECK(d.kind == Decision::Kind::kFinish);
    CHECK(t.text == before + "Done: \\boxed{1}");
    CHECK(t.loss_mask == std::vector<uint8_t>(t.response.size(), 1));
  }

  TEST_CASE("a void call keeps the text before \"```output\" in the token it starts in, ending the line as ToRL does") {
    const ToolLoop loop = rules(2, config::VoidCallRule::kTorl, merged());
    Trajectory t;
    // "x = 1 an", then "d\n```" ("```output" starts inside it) and "output\n\nx" (completes it, and more)
    const std::vector<int32_t> ids = tokens("x = 1 an", {id_of("d\n```"), id_of("output\n\nx")});
    Decision d = loop.on_segment(t, segment_of(ids, FinishReason::kStopString));
    REQUIRE(d.kind == Decision::Kind::kContinue);
    CHECK(d.drop == 2);
    CHECK(text_of(d.tokens) == "d\n");  // re-encoded: two byte tokens, mask 0
    CHECK(d.stop_strings);              // one round of two spent
    CHECK(text_of(t.response) == "x = 1 and\n");
    CHECK(t.loss_mask == std::vector<uint8_t>{1, 1, 1, 1, 1, 1, 1, 1, 0, 0});
    CHECK(t.versions.back() == -1);
    CHECK(t.logprobs.back() == 0.0f);
    REQUIRE(t.cuts.size() == 1);
    CHECK(t.cuts[0].tokens == std::vector<int32_t>{id_of("d\n```"), id_of("output\n\nx")});
    CHECK(t.cuts[0].kept_tokens == 2);

    // text that does not end a line gets "\n" before generation goes on
    Trajectory u;
    d = loop.on_segment(u, segment_of(tokens("x = 1```output"), FinishReason::kStopString));
    CHECK(d.drop == 9);
    CHECK(text_of(d.tokens) == "\n");
    CHECK(text_of(u.response) == "x = 1\n");
    CHECK(u.loss_mask.back() == 0);
  }

  TEST_CASE("the ignore rule keeps a void call as torl did before: no round spent, \"```output\" stays") {
    const ToolLoop loop = rules(1, config::VoidCallRule::kIgnore);
    Trajectory t;
    const Decision d = loop.on_segment(t, segment("```python\nprint(1)\n```output", FinishReason::kStopString));
    CHECK(d.kind == Decision::Kind::kContinue);
    CHECK(d.drop == 0);
    CHECK(d.tokens.empty());
    CHECK(d.stop_strings);
    CHECK(t.void_calls == 1);
    CHECK(t.cuts.empty());
    CHECK(text_of(t.response) == "```python\nprint(1)\n```output");
  }

  TEST_CASE("text the stopping token writes past \"```output\" is cut: the tool text follows \"```output\" itself") {
    const ToolLoop loop = rules(1, config::VoidCallRule::kTorl, merged());
    Trajectory t;
    const std::string code = "```python\nprint(1)\n```\n";
    Decision d = loop.on_segment(t, segment_of(tokens(code, {id_of("```outputs")}), FinishReason::kStopString));
    REQUIRE(d.kind == Decision::Kind::kExecute);
    CHECK(d.code == "print(1)\n");
    CHECK(text_of(t.response) == code + "```output");
    REQUIRE(t.cuts.size() == 1);
    CHECK_FALSE(t.cuts[0].void_call);
    CHECK(t.cuts[0].tokens == std::vector<int32_t>{id_of("```outputs")});
    CHECK(t.cuts[0].kept_tokens == 9);
    d = loop.on_result(t, d.code, ok("1\n"), 1.0);
    REQUIRE(d.kind == Decision::Kind::kContinue);
    CHECK(d.drop == 1);  // the engine still holds "```outputs": it takes it back
    CHECK(text_of(d.tokens) == "```output\n1\n```\n");
    CHECK(text_of(t.response) == code + "```output\n1\n```\n");
    for (size_t i = 0; i < t.loss_mask.size(); ++i) CHECK(t.loss_mask[i] == (i < code.size() ? 1 : 0));
    CHECK(t.tool_calls.at(0).response_offset == static_cast<int64_t>(code.size() + 9));

    // a stopping token that ends with "```output" is kept as sampled
    Trajectory u;
    d = loop.on_segment(u, segment(code + "```output", FinishReason::kStopString));
    REQUIRE(d.kind == Decision::Kind::kExecute);
    d = loop.on_result(u, d.code, ok("1\n"), 1.0);
    CHECK(d.drop == 0);
    CHECK(text_of(d.tokens) == "\n1\n```\n");
    CHECK(u.cuts.empty());
  }

  TEST_CASE("only code written since the last round's stop runs: an execution's or a void call's") {
    const ToolLoop loop = rules(3);
    Trajectory t;
    Decision d = loop.on_segment(t, segment("```python\nprint(1)\n```\n```output", FinishReason::kStopString));
    d = loop.on_result(t, d.code, ok("1\n"), 1.0);
    d = loop.on_segment(t, segment("no code here\n```output", FinishReason::kStopString));
    CHECK(d.kind == Decision::Kind::kContinue);  // the earlier block is not run again
    CHECK(t.void_calls == 1);
    // a block opened before a void call and closed after it is not run either
    Trajectory u;
    d = loop.on_segment(u, segment("```python\nprint(2)\n```output", FinishReason::kStopString));
    REQUIRE(d.kind == Decision::Kind::kContinue);
    d = loop.on_segment(u, segment("```\n```output", FinishReason::kStopString));
    CHECK(d.kind == Decision::Kind::kContinue);
    CHECK(u.void_calls == 2);
    CHECK(loop.rounds(u) == 2);
    // ... where the ignore rule, whose window starts at the last execution, runs it
    const ToolLoop ignore = rules(3, config::VoidCallRule::kIgnore);
    Trajectory v;
    d = ignore.on_segment(v, segment("```python\nprint(2)\n```output", FinishReason::kStopString));
    d = ignore.on_segment(v, segment("\n```\n```output", FinishReason::kStopString));
    REQUIRE(d.kind == Decision::Kind::kExecute);  // the kept "```output" line closed the block
    CHECK(d.code == "print(2)\n");
  }

  TEST_CASE("a sandbox fault is shown as ToRL's \"UnknownError\" whatever the feedback; the cause is kept") {
    for (const auto feedback : {config::ToolFeedback::kTorl, config::ToolFeedback::kFull, config::ToolFeedback::kNone}) {
      const ToolLoop loop({.max_calls = 1, .feedback = feedback, .max_response_tokens = 500}, bytes());
      Trajectory t;
      Decision d = loop.on_segment(t, segment("```python\nprint(1)\n```\n```output", FinishReason::kStopString));
      REQUIRE(d.kind == Decision::Kind::kExecute);
      d = loop.on_result(t, d.code, sandbox::sandbox_error("executor queue is full (1024 waiting)"), 1.0);
      REQUIRE(d.kind == Decision::Kind::kContinue);
      CHECK(bytes().decode(d.tokens) == "\nUnknownError\n```\n");
      CHECK(t.tool_calls.at(0).observation == "UnknownError");
      CHECK(t.tool_calls.at(0).result.stderr_text == "executor queue is full (1024 waiting)");
    }
  }

  TEST_CASE("the execution-error penalty's rules: ToRL's looks at the last run, passing on exit 0 or any stdout") {
    const auto with = [](std::vector<sandbox::ExecutionResult> results) {
      Trajectory t;
      for (auto& r : results) t.tool_calls.push_back(ToolCall{"", std::move(r), "", 0, 0, 0});
      return t;
    };
    sandbox::ExecutionResult failed_with_output;
    failed_with_output.status = sandbox::ExecutionStatus::kError;
    failed_with_output.exit_code = 1;
    failed_with_output.stdout_text = "partial\n";
    sandbox::ExecutionResult timed_out;
    timed_out.status = sandbox::ExecutionStatus::kTimeout;
    using config::ExecErrorRule;
    CHECK_FALSE(with({}).code_failed(ExecErrorRule::kTorl));
    CHECK_FALSE(with({}).code_failed(ExecErrorRule::kAny));
    CHECK_FALSE(with({timed_out, ok("1\n")}).code_failed(ExecErrorRule::kTorl));  // only the last counts
    CHECK(with({timed_out, ok("1\n")}).code_failed(ExecErrorRule::kAny));
    CHECK_FALSE(with({failed_with_output}).code_failed(ExecErrorRule::kTorl));    // stdout: passed
    CHECK(with({failed_with_output}).code_failed(ExecErrorRule::kAny));
    CHECK(with({ok("1\n"), timed_out}).code_failed(ExecErrorRule::kTorl));
    CHECK(with({sandbox::sandbox_error("worker died")}).code_failed(ExecErrorRule::kTorl));
    CHECK_FALSE(with({ok("")}).code_failed(ExecErrorRule::kTorl));                // exit 0, no output
  }

  TEST_CASE("tool text that does not fit the response budget ends the trajectory, keeping the call") {
    const ToolLoop loop({.max_calls = 1, .feedback = config::ToolFeedback::kTorl, .max_response_tokens = 40}, bytes());
    Trajectory t;
    Decision d = loop.on_segment(t, segment("```python\nprint(1)\n```\n```output", FinishReason::kStopString));
    REQUIRE(d.kind == Decision::Kind::kExecute);
    d = loop.on_result(t, d.code, ok(std::string(30, 'x')), 1.0);
    CHECK(d.kind == Decision::Kind::kFinish);
    CHECK(t.finish == FinishReason::kLength);
    REQUIRE(t.tool_calls.size() == 1);
    CHECK(t.tool_calls[0].tool_tokens == 0);
    CHECK(t.response.size() == t.loss_mask.size());
  }
}

}  // namespace
}  // namespace torl::actors
