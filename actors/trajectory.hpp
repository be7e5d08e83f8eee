// What flows through the rollout pipeline: a RolloutJob (one prompt to sample once), the Segments a
// generator produces between pauses, and the Trajectory the interceptor assembles from them: every
// token with its loss mask, log-prob and policy version, the tool calls with their results, and the
// reward. Plain value types (no CAF, no LibTorch): actors copy them between threads; traces, eval
// output and replay read their JSON.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/json.hpp"
#include "model/sampling.hpp"
#include "rewards/reward.hpp"
#include "sandbox/execution_result.hpp"

namespace torl::actors {

// One prompt to roll out once. Made by the driver; read by everyone downstream.
struct RolloutJob {
  int64_t id = 0;                  // unique in the run; also the trajectory's id
  std::string dataset;             // e.g. "aime24"
  int64_t problem = 0;             // index of the problem in its data set
  std::string problem_id;          // the data set's own id, when it has one
  int sample = 0;                  // 0..n-1 within the problem's group
  uint64_t seed = 0;               // the sampling stream of this trajectory
  std::vector<int32_t> prompt;     // token ids of the formatted prompt
  std::string gold_answer;
  model::SamplingParams sampling;
  int generator = -1;              // set by the generator that admits it
};

enum class FinishReason { kNone, kStopString, kEos, kLength, kCacheFull, kError };
const char* finish_reason_name(FinishReason reason);  // "stop_string", "eos", "length", ...

// What a generator sampled for one trajectory since it last ran: the tokens, their log-probs and
// the policy version that sampled each, and why it paused.
struct Segment {
  int64_t id = 0;
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;
  std::vector<int32_t> versions;
  FinishReason stop = FinishReason::kNone;  // kStopString: the text ends with "```output"
  std::string error;                        // for kError: what the generator could not do
};

// One execution the trajectory asked for.
struct ToolCall {
  std::string code;
  sandbox::ExecutionResult result;
  std::string observation;     // the text the model was shown
  int64_t response_offset = 0;  // where its tool tokens start in Trajectory::response
  int64_t tool_tokens = 0;      // how many tokens were appended (0 when they did not fit)
  double latency_ms = 0;        // from the request to the result, as the interceptor saw it
};

// Sampled tokens the tool protocol took out of the response (actors/README.md, "The tool protocol"):
// a void call's dangling "```output", or the text that the token completing "```output" wrote past
// it. The model sampled them, but the context it went on from does not hold them and they are never
// trained on; traces keep them, and replay feeds them again.
struct Cut {
  int64_t response_offset = 0;    // where they stood: the response goes on from here
  std::vector<int32_t> tokens;    // the sampled tokens taken out
  std::vector<float> logprobs;
  std::vector<int32_t> versions;
  int64_t kept_tokens = 0;        // mask-0 tokens in their place at response_offset: the text that stays
  bool void_call = false;         // a void call's "```output"; else text past the stop string
};

struct Trajectory {
  RolloutJob job;
  // ---- the response: one entry per token, generated and injected alike ----
  std::vector<int32_t> response;
  std::vector<uint8_t> loss_mask;  // 1 = sampled by the policy, 0 = tool output
  std::vector<float> logprobs;     // the policy's log-prob of each sampled token; 0 for tool tokens
  std::vector<int32_t> versions;   // policy version that sampled each token; -1 for tool tokens
  std::string text;                // the response decoded (tool text included)
  // ---- the tool loop ----
  std::vector<ToolCall> tool_calls;
  int void_calls = 0;              // "```output" written without a closed ```python block before it
  std::vector<Cut> cuts;           // in response order
  FinishReason finish = FinishReason::kNone;
  std::string error;               // what went wrong when finish is kError
  // ---- the outcome ----
  std::optional<rewards::Score> score;
  double started_ms = 0, finished_ms = 0;  // on the run's clock

  int64_t id() const { return job.id; }
  // Whether its code failed, for reward.exec_error_penalty: by `rule` (config.hpp, ExecErrorRule).
  bool code_failed(config::ExecErrorRule rule) const;
  int tool_errors() const;          // executions that did not end with status ok
  // Why the infrastructure, not the model, failed this trajectory ("" when it did not): the sandbox
  // failed a call (sandbox_error: a worker died, no result in time, the service unreachable), or it
  // was never scored (the reward failed or timed out). Such a trajectory says nothing about the policy
  // and is not trained on. (A prompt or response that does not fit the cache is the data's limit, like
  // max_response_tokens: scored as it stands.)
  std::string infra_failure() const;
};

// The whole record as one JSON object (tokens, text, tool calls with full results, score): what
// trace.trajectories writes and replay reads.
Json to_json(const Trajectory& trajectory);

// The inverse of to_json: a recorded trajectory back, with every field to_json writes. Errors name
// the field that is missing or of the wrong type.
Expected<Trajectory> trajectory_from_json(const Json& record);

}  // namespace torl::actors
