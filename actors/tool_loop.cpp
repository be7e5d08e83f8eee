#include "actors/tool_loop.hpp"

#include <algorithm>

#include "common/check.hpp"
#include "sandbox/protocol.hpp"

namespace torl::actors {

ToolRules tool_rules(const config::ToolConfig& tool, const config::RolloutConfig& rollout) {
  return {tool.max_calls, tool.feedback, rollout.max_response_tokens, tool.void_calls};
}

std::vector<std::string> ToolLoop::initial_stop_strings() const {
  if (rules_.max_calls == 0) return {};
  return {std::string(sandbox::kStopString)};
}

int ToolLoop::rounds(const Trajectory& t) const {
  const int executions = static_cast<int>(t.tool_calls.size());
  return rules_.void_calls == config::VoidCallRule::kTorl ? executions + t.void_calls : executions;
}

size_t ToolLoop::window_start(const Trajectory& t) const {
  int64_t from = 0;
  if (!t.tool_calls.empty()) from = t.tool_calls.back().response_offset + t.tool_calls.back().tool_tokens;
  if (!t.cuts.empty() && t.cuts.back().void_call) {
    from = std::max(from, t.cuts.back().response_offset + t.cuts.back().kept_tokens);
  }
  return static_cast<size_t>(from);
}

std::vector<int32_t> ToolLoop::cut(Trajectory& t, size_t count, const std::string& kept, bool void_call) const {
  const size_t at = t.response.size() - count;
  Cut c;
  c.response_offset = static_cast<int64_t>(at);
  c.tokens.assign(t.response.begin() + static_cast<std::ptrdiff_t>(at), t.response.end());
  c.logprobs.assign(t.logprobs.begin() + static_cast<std::ptrdiff_t>(at), t.logprobs.end());
  c.versions.assign(t.versions.begin() + static_cast<std::ptrdiff_t>(at), t.versions.end());
  c.void_call = void_call;
  t.response.resize(at);
  t.loss_mask.resize(at);
  t.logprobs.resize(at);
  t.versions.resize(at);
  std::vector<int32_t> injected = kept.empty() ? std::vector<int32_t>{} : tokenizer_.encode(kept);
  c.kept_tokens = static_cast<int64_t>(injected.size());
  t.response.insert(t.response.end(), injected.begin(), injected.end());
  t.loss_mask.insert(t.loss_mask.end(), injected.size(), 0);
  t.logprobs.insert(t.logprobs.end(), injected.size(), 0.0f);
  t.versions.insert(t.versions.end(), injected.size(), -1);
  t.cuts.push_back(std::move(c));
  return injected;
}

Decision ToolLoop::on_segment(Trajectory& t, const Segment& segment) const {
  const size_t segment_start = t.response.size();
  t.response.insert(t.response.end(), segment.tokens.begin(), segment.tokens.end());
  t.loss_mask.insert(t.loss_mask.end(), segment.tokens.size(), 1);
  t.logprobs.insert(t.logprobs.end(), segment.logprobs.begin(), segment.logprobs.end());
  t.versions.insert(t.versions.end(), segment.versions.begin(), segment.versions.end());
  if (segment.stop == FinishReason::kError) {
    t.error = segment.error;
    return finish(t, FinishReason::kError);
  }
  if (segment.stop != FinishReason::kStopString) return finish(t, segment.stop);
  if (rounds(t) >= rules_.max_calls) return continue_with(t, 0, {});  // no stop strings were on: not a round

  // The segment's text and where each token starts in it. The engine stopped at the token that
  // completed the first "```output" since it resumed, so that token is the segment's last.
  std::string text;
  std::vector<size_t> token_start;
  for (const int32_t token : segment.tokens) {
    token_start.push_back(text.size());
    text += tokenizer_.token_bytes(token);
  }
  const size_t stop_at = text.find(sandbox::kStopString);
  TORL_CHECK(stop_at != std::string::npos && !segment.tokens.empty(), "a stop-string segment without \"```output\"");
  const size_t stop_end = stop_at + sandbox::kStopString.size();

  std::string window;
  for (size_t i = window_start(t); i < segment_start; ++i) window += tokenizer_.token_bytes(t.response[i]);
  window.append(text, 0, stop_at);
  if (auto code = sandbox::extract_code(window)) {
    // vLLM ends the text at the stop string: what the stopping token wrote past it is cut.
    if (stop_end < text.size()) cut(t, 1, text.substr(token_start.back(), stop_end - token_start.back()), false);
    Decision decision;
    decision.kind = Decision::Kind::kExecute;
    decision.code = std::move(*code);
    return decision;
  }
  ++t.void_calls;
  if (rules_.void_calls == config::VoidCallRule::kIgnore) return continue_with(t, 0, {});

  // ToRL: the text before "```output" stays, ending a line; "```output" and what follows it go.
  size_t first = token_start.size() - 1;  // the token "```output" starts in
  while (token_start[first] > stop_at) --first;
  std::string kept = text.substr(token_start[first], stop_at - token_start[first]);
  const size_t dropped = segment.tokens.size() - first;
  const size_t before = t.response.size() - dropped;  // response tokens that stay as sampled
  const bool ends_line = !kept.empty() ? kept.back() == '\n'
                                       : before > 0 && tokenizer_.token_bytes(t.response[before - 1]).ends_with('\n');
  if (!ends_line) kept += '\n';
  std::vector<int32_t> injected = cut(t, dropped, kept, true);
  return continue_with(t, static_cast<int64_t>(dropped), std::move(injected));
}

Decision ToolLoop::on_result(Trajectory& t, std::string code, sandbox::ExecutionResult result,
                             double latency_ms) const {
  ToolCall call;
  call.code = std::move(code);
  call.observation = result.status == sandbox::ExecutionStatus::kSandboxError
                         ? std::string(sandbox::kSandboxFaultObservation)
                         : sandbox::format_observation(result, rules_.feedback);
  call.result = std::move(result);
  call.response_offset = static_cast<int64_t>(t.response.size());
  call.latency_ms = latency_ms;
  const std::vector<int32_t> tokens = tokenizer_.encode(sandbox::observation_suffix(call.observation));
  const bool fits = static_cast<int64_t>(t.response.size() + tokens.size()) < rules_.max_response_tokens;
  call.tool_tokens = fits ? static_cast<int64_t>(tokens.size()) : 0;
  // This round's cut, if its stopping token wrote past "```output": the engine still holds it.
  const Cut* round_cut = nullptr;
  if (!t.cuts.empty() && !t.cuts.back().void_call &&
      t.cuts.back().response_offset + t.cuts.back().kept_tokens == call.response_offset &&
      t.cuts.back().response_offset >= static_cast<int64_t>(window_start(t))) {
    round_cut = &t.cuts.back();
  }
  t.tool_calls.push_back(std::move(call));
  if (!fits) return finish(t, FinishReason::kLength);
  int64_t drop = 0;
  std::vector<int32_t> appended;
  if (round_cut) {
    drop = static_cast<int64_t>(round_cut->tokens.size());
    appended.assign(t.response.begin() + round_cut->response_offset, t.response.end());
  }
  appended.insert(appended.end(), tokens.begin(), tokens.end());
  t.response.insert(t.response.end(), tokens.begin(), tokens.end());
  t.loss_mask.insert(t.loss_mask.end(), tokens.size(), 0);
  t.logprobs.insert(t.logprobs.end(), tokens.size(), 0.0f);
  t.versions.insert(t.versions.end(), tokens.size(), -1);
  return continue_with(t, drop, std::move(appended));
}

Decision ToolLoop::continue_with(Trajectory& t, int64_t drop, std::vector<int32_t> tokens) const {
  const int64_t left = rules_.max_response_tokens - static_cast<int64_t>(t.response.size());
  if (left <= 0) return finish(t, FinishReason::kLength);
  Decision decision;
  decision.kind = Decision::Kind::kContinue;
  decision.drop = drop;
  decision.tokens = std::move(tokens);
  decision.stop_strings = rounds(t) < rules_.max_calls;
  decision.max_new_tokens = left;
  return decision;
}

Decision ToolLoop::finish(Trajectory& t, FinishReason reason) const {
  t.finish = reason;
  t.text = tokenizer_.decode(t.response);
  return Decision{};
}

}  // namespace torl::actors
