#include "actors/tool_loop.hpp"

#include "sandbox/protocol.hpp"

namespace torl::actors {

std::vector<std::string> ToolLoop::initial_stop_strings() const {
  if (rules_.max_calls == 0) return {};
  return {std::string(sandbox::kStopString)};
}

Decision ToolLoop::on_segment(Trajectory& t, const Segment& segment) const {
  t.response.insert(t.response.end(), segment.tokens.begin(), segment.tokens.end());
  t.loss_mask.insert(t.loss_mask.end(), segment.tokens.size(), 1);
  t.logprobs.insert(t.logprobs.end(), segment.logprobs.begin(), segment.logprobs.end());
  t.versions.insert(t.versions.end(), segment.versions.begin(), segment.versions.end());
  if (segment.stop == FinishReason::kError) {
    t.error = segment.error;
    return finish(t, FinishReason::kError);
  }
  if (segment.stop != FinishReason::kStopString) return finish(t, segment.stop);
  if (static_cast<int>(t.tool_calls.size()) >= rules_.max_calls) return continue_with(t, {});

  // The text generated since the last execution's tool text.
  size_t from = 0;
  if (!t.tool_calls.empty()) {
    from = static_cast<size_t>(t.tool_calls.back().response_offset + t.tool_calls.back().tool_tokens);
  }
  std::string window;
  for (size_t i = from; i < t.response.size(); ++i) window += tokenizer_.token_bytes(t.response[i]);
  if (auto code = sandbox::extract_code(window)) {
    Decision decision;
    decision.kind = Decision::Kind::kExecute;
    decision.code = std::move(*code);
    return decision;
  }
  ++t.void_calls;
  return continue_with(t, {});
}

Decision ToolLoop::on_result(Trajectory& t, std::string code, sandbox::ExecutionResult result,
                             double latency_ms) const {
  ToolCall call;
  call.code = std::move(code);
  call.observation = sandbox::format_observation(result, rules_.feedback);
  call.result = std::move(result);
  call.response_offset = static_cast<int64_t>(t.response.size());
  call.latency_ms = latency_ms;
  const std::vector<int32_t> tokens = tokenizer_.encode(sandbox::observation_suffix(call.observation));
  const bool fits = static_cast<int64_t>(t.response.size() + tokens.size()) < rules_.max_response_tokens;
  call.tool_tokens = fits ? static_cast<int64_t>(tokens.size()) : 0;
  t.tool_calls.push_back(std::move(call));
  if (!fits) return finish(t, FinishReason::kLength);
  t.response.insert(t.response.end(), tokens.begin(), tokens.end());
  t.loss_mask.insert(t.loss_mask.end(), tokens.size(), 0);
  t.logprobs.insert(t.logprobs.end(), tokens.size(), 0.0f);
  t.versions.insert(t.versions.end(), tokens.size(), -1);
  return continue_with(t, tokens);
}

Decision ToolLoop::continue_with(Trajectory& t, std::vector<int32_t> tokens) const {
  const int64_t left = rules_.max_response_tokens - static_cast<int64_t>(t.response.size());
  if (left <= 0) return finish(t, FinishReason::kLength);
  Decision decision;
  decision.kind = Decision::Kind::kContinue;
  decision.tokens = std::move(tokens);
  decision.stop_strings = static_cast<int>(t.tool_calls.size()) < rules_.max_calls;
  decision.max_new_tokens = left;
  return decision;
}

Decision ToolLoop::finish(Trajectory& t, FinishReason reason) const {
  t.finish = reason;
  t.text = tokenizer_.decode(t.response);
  return Decision{};
}

}  // namespace torl::actors
