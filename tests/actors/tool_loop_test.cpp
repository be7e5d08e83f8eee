// The tool protocol on one trajectory, without actors: masks, the C limit, void calls, the budget.
#include <doctest/doctest.h>

#include "actors/tool_loop.hpp"

namespace torl::actors {
namespace {

const model::Tokenizer& bytes() {
  static const model::Tokenizer tokenizer = model::Tokenizer::byte_level({"<eos>"});
  return tokenizer;
}

Segment segment(std::string_view text, FinishReason stop) {
  Segment s;
  for (const int32_t id : bytes().encode(text)) {
    s.tokens.push_back(id);
    s.logprobs.push_back(-0.5f);
    s.versions.push_back(3);
  }
  s.stop = stop;
  return s;
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

  TEST_CASE("```output without a closed block is a void call: nothing runs, generation continues") {
    const ToolLoop loop({.max_calls = 1, .feedback = config::ToolFeedback::kTorl, .max_response_tokens = 500}, bytes());
    Trajectory t;
    const Decision d = loop.on_segment(t, segment("```python\nprint(1)\n```output", FinishReason::kStopString));
    CHECK(d.kind == Decision::Kind::kContinue);
    CHECK(d.tokens.empty());
    CHECK(d.stop_strings);  // a void call does not count against C
    CHECK(t.void_calls == 1);
    CHECK(t.tool_calls.empty());
  }

  TEST_CASE("only code written since the last execution runs") {
    const ToolLoop loop({.max_calls = 3, .feedback = config::ToolFeedback::kTorl, .max_response_tokens = 500}, bytes());
    Trajectory t;
    Decision d = loop.on_segment(t, segment("```python\nprint(1)\n```\n```output", FinishReason::kStopString));
    d = loop.on_result(t, d.code, ok("1\n"), 1.0);
    d = loop.on_segment(t, segment("no code here\n```output", FinishReason::kStopString));
    CHECK(d.kind == Decision::Kind::kContinue);  // the earlier block is not run again
    CHECK(t.void_calls == 1);
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
