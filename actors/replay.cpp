#include "actors/replay.hpp"

#include <algorithm>

#include "model/stop_strings.hpp"
#include "rewards/reward.hpp"

namespace torl::actors {
namespace {

// `text` as a JSON string, cut to about `limit` characters.
std::string quoted(const std::string& text, size_t limit = 80) {
  const std::string cut = text.size() > limit ? text.substr(0, limit) : text;
  return Json(cut).dump(-1, ' ', false, Json::error_handler_t::replace) + (text.size() > limit ? "..." : "");
}

std::string result_text(const sandbox::ExecutionResult& r) {
  std::string text = std::string("status ") + sandbox::status_name(r.status) + ", exit " + std::to_string(r.exit_code);
  if (r.signal) text += ", signal " + std::to_string(r.signal);
  text += ", stdout " + quoted(r.stdout_text) + ", stderr " + quoted(r.stderr_text);
  if (r.truncated) text += ", truncated";
  return text;
}

bool same_result(const sandbox::ExecutionResult& a, const sandbox::ExecutionResult& b) {
  return a.status == b.status && a.exit_code == b.exit_code && a.signal == b.signal &&
         same_as_recorded(a.stdout_text, b.stdout_text) && same_as_recorded(a.stderr_text, b.stderr_text) && a.truncated == b.truncated;
}

template <class T>
size_t first_difference(const std::vector<T>& a, const std::vector<T>& b) {
  return static_cast<size_t>(std::mismatch(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(std::min(a.size(), b.size())), b.begin()).first - a.begin());
}

std::string decode_from(const std::vector<int32_t>& tokens, size_t from, const model::Tokenizer& tokenizer) {
  std::string text;
  for (size_t i = from; i < tokens.size() && i < from + 40; ++i) text += tokenizer.token_bytes(tokens[i]);
  return quoted(text, 120);
}

}  // namespace

std::string as_recorded(const std::string& text) {
  return Json::parse(to_jsonl_line(Json(text))).get<std::string>();
}

bool same_as_recorded(const std::string& a, const std::string& b) { return a == b || as_recorded(a) == as_recorded(b); }

sandbox::ExecutionResult recorded_result(size_t index, const std::string&, const ToolCall* recorded) {
  if (recorded) return recorded->result;
  return sandbox::sandbox_error("replay: the record has no result for call " + std::to_string(index + 1));
}

Replay replay_trajectory(const Trajectory& recorded, const ToolLoop& loop, const config::RewardConfig& reward,
                         const ResultSource& results) {
  Replay out;
  Trajectory& t = out.replayed;
  t.job = recorded.job;
  t.started_ms = recorded.started_ms;
  t.finished_ms = recorded.finished_ms;
  // What the model sampled, in order: the record's mask-1 tokens, with the tokens the protocol cut
  // back where they stood.
  struct Sampled {
    int32_t token;
    float logprob;
    int32_t version;
  };
  std::vector<Sampled> sampled;
  size_t next_cut = 0;
  for (size_t i = 0; i <= recorded.response.size(); ++i) {
    for (; next_cut < recorded.cuts.size() && recorded.cuts[next_cut].response_offset <= static_cast<int64_t>(i); ++next_cut) {
      const Cut& cut = recorded.cuts[next_cut];
      for (size_t k = 0; k < cut.tokens.size(); ++k) sampled.push_back({cut.tokens[k], cut.logprobs[k], cut.versions[k]});
    }
    if (i < recorded.response.size() && recorded.loss_mask[i]) {
      sampled.push_back({recorded.response[i], recorded.logprobs[i], recorded.versions[i]});
    }
  }
  const model::Tokenizer& tokenizer = loop.tokenizer();
  model::StopMatcher matcher(loop.initial_stop_strings());
  bool stops_on = !loop.initial_stop_strings().empty();
  Segment segment{recorded.id(), {}, {}, {}, FinishReason::kNone, {}};
  const auto close = [&](FinishReason stop) {
    segment.stop = stop;
    if (stop == FinishReason::kError) segment.error = recorded.error;
    Decision decision = loop.on_segment(t, segment);
    segment = Segment{recorded.id(), {}, {}, {}, FinishReason::kNone, {}};
    return decision;
  };
  size_t next = 0;            // into sampled
  bool record_ended = false;  // the record's last piece was closed
  while (true) {
    Decision decision;
    // ---- "generate": the recorded tokens until the engine would have paused ----
    if (next < sampled.size()) {
      const Sampled& s = sampled[next++];
      segment.tokens.push_back(s.token);
      segment.logprobs.push_back(s.logprob);
      segment.versions.push_back(s.version);
      const bool stopped = matcher.append(tokenizer.token_bytes(s.token)).has_value() && stops_on;
      if (stopped) {
        decision = close(FinishReason::kStopString);
      } else if (next == sampled.size()) {
        record_ended = true;
        decision = close(recorded.finish);
      } else {
        continue;
      }
    } else if (!record_ended) {
      record_ended = true;  // the record ends where the protocol wanted more: close as it did
      decision = close(recorded.finish == FinishReason::kStopString ? FinishReason::kLength : recorded.finish);
    } else {
      out.differences.push_back("the replay wants more tokens than the record has (the record finished as " +
                                std::string(finish_reason_name(recorded.finish)) + ")");
      if (t.finish == FinishReason::kNone) {
        t.finish = recorded.finish;
        t.text = tokenizer.decode(t.response);
      }
      break;
    }
    // ---- the protocol's decisions, until it wants generation again or finishes ----
    while (decision.kind == Decision::Kind::kExecute) {
      const size_t index = t.tool_calls.size();
      const ToolCall* call = index < recorded.tool_calls.size() ? &recorded.tool_calls[index] : nullptr;
      sandbox::ExecutionResult result = results(index, decision.code, call);
      decision = loop.on_result(t, decision.code, std::move(result), call ? call->latency_ms : 0.0);
    }
    if (decision.kind == Decision::Kind::kFinish) break;
    matcher.reset();  // as the engine does on resume: only new text may stop
    stops_on = decision.stop_strings;
  }
  if (recorded.score) {
    t.score = rewards::score_response(t.text, t.job.gold_answer, reward, t.code_failed(reward.exec_error_rule));
  }
  std::vector<std::string> found = compare_replay(recorded, t, tokenizer);
  out.differences.insert(out.differences.end(), found.begin(), found.end());
  return out;
}

std::vector<std::string> compare_replay(const Trajectory& recorded, const Trajectory& replayed,
                                        const model::Tokenizer& tokenizer) {
  std::vector<std::string> d;
  if (recorded.response != replayed.response) {
    const size_t at = first_difference(recorded.response, replayed.response);
    d.push_back("response: differs from token " + std::to_string(at) + " (recorded " +
                std::to_string(recorded.response.size()) + " tokens, replayed " + std::to_string(replayed.response.size()) +
                "): recorded " + decode_from(recorded.response, at, tokenizer) + ", replayed " +
                decode_from(replayed.response, at, tokenizer));
  } else if (recorded.loss_mask != replayed.loss_mask) {
    d.push_back("loss mask: differs from token " + std::to_string(first_difference(recorded.loss_mask, replayed.loss_mask)));
  }
  if (recorded.tool_calls.size() != replayed.tool_calls.size()) {
    d.push_back("tool calls: recorded " + std::to_string(recorded.tool_calls.size()) + ", replayed " +
                std::to_string(replayed.tool_calls.size()));
  }
  for (size_t i = 0; i < std::min(recorded.tool_calls.size(), replayed.tool_calls.size()); ++i) {
    const ToolCall &a = recorded.tool_calls[i], &b = replayed.tool_calls[i];
    const std::string call = "call " + std::to_string(i + 1) + " ";
    if (!same_as_recorded(a.code, b.code)) d.push_back(call + "code: recorded " + quoted(a.code) + ", replayed " + quoted(b.code));
    if (!same_result(a.result, b.result)) {
      d.push_back(call + "result: recorded " + result_text(a.result) + "; replayed " + result_text(b.result));
    }
    if (!same_as_recorded(a.observation, b.observation)) {
      d.push_back(call + "observation: recorded " + quoted(a.observation) + ", replayed " + quoted(b.observation));
    }
    if (a.response_offset != b.response_offset || a.tool_tokens != b.tool_tokens) {
      d.push_back(call + "tool tokens: recorded " + std::to_string(a.tool_tokens) + " at " +
                  std::to_string(a.response_offset) + ", replayed " + std::to_string(b.tool_tokens) + " at " +
                  std::to_string(b.response_offset));
    }
  }
  if (recorded.cuts.size() != replayed.cuts.size()) {
    d.push_back("cuts: recorded " + std::to_string(recorded.cuts.size()) + ", replayed " + std::to_string(replayed.cuts.size()));
  }
  for (size_t i = 0; i < std::min(recorded.cuts.size(), replayed.cuts.size()); ++i) {
    const Cut &a = recorded.cuts[i], &b = replayed.cuts[i];
    if (a.response_offset != b.response_offset || a.tokens != b.tokens || a.kept_tokens != b.kept_tokens ||
        a.void_call != b.void_call) {
      d.push_back("cut " + std::to_string(i + 1) + ": recorded " + std::to_string(a.tokens.size()) + " tokens at " +
                  std::to_string(a.response_offset) + ", replayed " + std::to_string(b.tokens.size()) + " at " +
                  std::to_string(b.response_offset));
    }
  }
  if (recorded.void_calls != replayed.void_calls) {
    d.push_back("void calls: recorded " + std::to_string(recorded.void_calls) + ", replayed " +
                std::to_string(replayed.void_calls));
  }
  if (recorded.finish != replayed.finish) {
    d.push_back(std::string("finish: recorded ") + finish_reason_name(recorded.finish) + ", replayed " +
                finish_reason_name(replayed.finish));
  }
  if (recorded.response == replayed.response && !same_as_recorded(recorded.text, replayed.text)) {
    d.push_back("text: recorded " + quoted(recorded.text) + ", replayed " + quoted(replayed.text));
  }
  if (recorded.score.has_value() != replayed.score.has_value()) {
    d.push_back(std::string("score: ") + (recorded.score ? "recorded, not replayed" : "replayed, not recorded"));
  } else if (recorded.score) {
    const rewards::Score &a = *recorded.score, &b = *replayed.score;
    if (a.reward != b.reward) d.push_back("reward: recorded " + std::to_string(a.reward) + ", replayed " + std::to_string(b.reward));
    if (a.outcome != b.outcome) {
      d.push_back(std::string("outcome: recorded ") + rewards::outcome_name(a.outcome) + ", replayed " +
                  rewards::outcome_name(b.outcome));
    }
    if (a.answer.has_value() != b.answer.has_value() || (a.answer && !same_as_recorded(*a.answer, *b.answer))) {
      d.push_back("answer: recorded " + (a.answer ? quoted(*a.answer) : std::string("none")) + ", replayed " +
                  (b.answer ? quoted(*b.answer) : std::string("none")));
    }
    if (a.exec_error_penalized != b.exec_error_penalized) d.push_back("exec error penalty: applied in one only");
  }
  return d;
}

}  // namespace torl::actors
