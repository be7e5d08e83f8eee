// ToolLoop: the tool-integrated-reasoning protocol of DESIGN.md §3, applied to one trajectory at a
// time. The interceptor actor feeds it each Segment a generator produced and each sandbox result;
// it updates the Trajectory (tokens, masks, calls) and says what happens next: run this code,
// continue generating after these tokens, or finish. Plain C++, no CAF: tests drive it directly.
//
// Loss masks: every sampled token gets 1, every injected tool token 0 -- by construction, at any C.
// Text the model wrote is never re-tokenized, with one exception: where the protocol cuts a token
// (the text after "```output", a void call's dangling "```output": actors/README.md, "The tool
// protocol"), the part of its text that stays is encoded again and injected with mask 0; the cut
// tokens are kept in Trajectory::cuts. Immutable after construction; any thread may call it (the
// Tokenizer is thread-safe).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "actors/trajectory.hpp"
#include "config/config.hpp"
#include "model/tokenizer.hpp"

namespace torl::actors {

struct ToolRules {
  int max_calls = 1;                       // C: tool rounds per trajectory (executions, and void calls by kTorl)
  config::ToolFeedback feedback = config::ToolFeedback::kTorl;
  int64_t max_response_tokens = 3072;      // generated plus tool tokens
  config::VoidCallRule void_calls = config::VoidCallRule::kTorl;
};

// The rules a run's config sets (tool.*, rollout.max_response_tokens).
ToolRules tool_rules(const config::ToolConfig& tool, const config::RolloutConfig& rollout);

// What the interceptor does next with a trajectory.
struct Decision {
  enum class Kind { kExecute, kContinue, kFinish };
  Kind kind = Kind::kFinish;
  std::string code;              // kExecute: the snippet to run
  int64_t drop = 0;              // kContinue: the engine takes back its last `drop` sampled tokens first
  std::vector<int32_t> tokens;   // kContinue: then appends these (mask 0) before generation continues
  bool stop_strings = true;      // kContinue: false once the C rounds are spent
  int64_t max_new_tokens = 0;    // kContinue: what is left of the response budget
};

class ToolLoop {
 public:
  ToolLoop(ToolRules rules, const model::Tokenizer& tokenizer) : rules_(rules), tokenizer_(tokenizer) {}

  // The stop strings a new trajectory starts with: "```output" when C > 0, none when C = 0.
  std::vector<std::string> initial_stop_strings() const;
  const ToolRules& rules() const { return rules_; }
  const model::Tokenizer& tokenizer() const { return tokenizer_; }

  // Appends the segment (mask 1) and decides. A "```output" stop with a closed ```python block in
  // the code window (the text since the previous round's stop, up to this "```output") -> kExecute;
  // text the stopping token wrote past "```output" is cut first. Without such a block, a void call:
  // by VoidCallRule::kTorl it spends a round and "```output" is cut (kContinue with the engine edit);
  // by kIgnore, kContinue with nothing. Any other stop -> kFinish (finish reason and text set).
  Decision on_segment(Trajectory& trajectory, const Segment& segment) const;

  // Records the call and appends its tool text (mask 0); a sandbox fault (kSandboxError) is shown as
  // kSandboxFaultObservation. kContinue (telling the engine about this round's cut, if any), or
  // kFinish with kLength when the tool text does not fit the response budget (the call is kept, with
  // tool_tokens 0).
  Decision on_result(Trajectory& trajectory, std::string code, sandbox::ExecutionResult result,
                     double latency_ms) const;

  // Tool rounds spent so far: executions, plus void calls by VoidCallRule::kTorl.
  int rounds(const Trajectory& trajectory) const;

 private:
  Decision finish(Trajectory& trajectory, FinishReason reason) const;
  Decision continue_with(Trajectory& trajectory, int64_t drop, std::vector<int32_t> tokens) const;
  // Takes the last `count` tokens out of the response into a Cut and injects `kept` (mask 0) in their
  // place; returns the injected tokens.
  std::vector<int32_t> cut(Trajectory& trajectory, size_t count, const std::string& kept, bool void_call) const;
  // Where this round's code window starts in the response.
  size_t window_start(const Trajectory& trajectory) const;

  ToolRules rules_;
  const model::Tokenizer& tokenizer_;
};

}  // namespace torl::actors
