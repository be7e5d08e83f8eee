// ToolLoop: the tool-integrated-reasoning protocol of DESIGN.md §3, applied to one trajectory at a
// time. The interceptor actor feeds it each Segment a generator produced and each sandbox result;
// it updates the Trajectory (tokens, masks, calls) and says what happens next: run this code,
// continue generating after these tokens, or finish. Plain C++, no CAF: tests drive it directly.
//
// Loss masks: every sampled token gets 1, every injected tool token 0 -- by construction, at any C.
// Text the model wrote is never re-tokenized; only the tool text "\n" + observation + "\n```\n" is
// encoded. Immutable after construction; any thread may call it (the Tokenizer is thread-safe).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "actors/trajectory.hpp"
#include "config/config.hpp"
#include "model/tokenizer.hpp"

namespace torl::actors {

struct ToolRules {
  int max_calls = 1;                       // C: executions per trajectory
  config::ToolFeedback feedback = config::ToolFeedback::kTorl;
  int64_t max_response_tokens = 3072;      // generated plus tool tokens
};

// What the interceptor does next with a trajectory.
struct Decision {
  enum class Kind { kExecute, kContinue, kFinish };
  Kind kind = Kind::kFinish;
  std::string code;              // kExecute: the snippet to run
  std::vector<int32_t> tokens;   // kContinue: appended (mask 0) before generation continues
  bool stop_strings = true;      // kContinue: false once the C-th call is answered
  int64_t max_new_tokens = 0;    // kContinue: what is left of the response budget
};

class ToolLoop {
 public:
  ToolLoop(ToolRules rules, const model::Tokenizer& tokenizer) : rules_(rules), tokenizer_(tokenizer) {}

  // The stop strings a new trajectory starts with: "```output" when C > 0, none when C = 0.
  std::vector<std::string> initial_stop_strings() const;
  const ToolRules& rules() const { return rules_; }
  const model::Tokenizer& tokenizer() const { return tokenizer_; }

  // Appends the segment (mask 1) and decides: a "```output" stop with a closed ```python block in
  // the text since the last execution -> kExecute; without one -> a void call, kContinue with no
  // tokens; any other stop -> kFinish (the trajectory's finish reason and text are set).
  Decision on_segment(Trajectory& trajectory, const Segment& segment) const;

  // Records the call and appends its tool text (mask 0). kContinue, or kFinish with kLength when
  // the tool text does not fit the response budget (the call is kept, with tool_tokens 0).
  Decision on_result(Trajectory& trajectory, std::string code, sandbox::ExecutionResult result,
                     double latency_ms) const;

 private:
  Decision finish(Trajectory& trajectory, FinishReason reason) const;
  Decision continue_with(Trajectory& trajectory, std::vector<int32_t> tokens) const;

  ToolRules rules_;
  const model::Tokenizer& tokenizer_;
};

}  // namespace torl::actors
