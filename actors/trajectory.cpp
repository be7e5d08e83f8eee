#include "actors/trajectory.hpp"

#include <algorithm>

namespace torl::actors {

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::kNone: return "none";
    case FinishReason::kStopString: return "stop_string";
    case FinishReason::kEos: return "eos";
    case FinishReason::kLength: return "length";
    case FinishReason::kCacheFull: return "cache_full";
    case FinishReason::kError: return "error";
  }
  return "?";
}

int Trajectory::tool_errors() const {
  return static_cast<int>(std::count_if(tool_calls.begin(), tool_calls.end(), [](const ToolCall& call) {
    return call.result.status != sandbox::ExecutionStatus::kOk;
  }));
}

bool Trajectory::code_failed() const { return tool_errors() > 0; }

Json to_json(const Trajectory& t) {
  Json calls = Json::array();
  for (const ToolCall& call : t.tool_calls) {
    calls.push_back({{"code", call.code},
                     {"status", sandbox::status_name(call.result.status)},
                     {"exit_code", call.result.exit_code},
                     {"signal", call.result.signal},
                     {"stdout", call.result.stdout_text},
                     {"stderr", call.result.stderr_text},
                     {"truncated", call.result.truncated},
                     {"queue_ms", call.result.queue_ms},
                     {"wall_ms", call.result.wall_ms},
                     {"observation", call.observation},
                     {"response_offset", call.response_offset},
                     {"tool_tokens", call.tool_tokens},
                     {"latency_ms", call.latency_ms}});
  }
  Json out = {{"id", t.job.id},
              {"dataset", t.job.dataset},
              {"problem", t.job.problem},
              {"problem_id", t.job.problem_id},
              {"sample", t.job.sample},
              {"seed", t.job.seed},
              {"generator", t.job.generator},
              {"gold_answer", t.job.gold_answer},
              {"prompt", t.job.prompt},
              {"response", t.response},
              {"loss_mask", t.loss_mask},
              {"logprobs", t.logprobs},
              {"versions", t.versions},
              {"text", t.text},
              {"tool_calls", calls},
              {"void_calls", t.void_calls},
              {"finish", finish_reason_name(t.finish)},
              {"started_ms", t.started_ms},
              {"finished_ms", t.finished_ms}};
  if (!t.error.empty()) out["error"] = t.error;
  if (t.score) {
    out["reward"] = t.score->reward;
    out["outcome"] = rewards::outcome_name(t.score->outcome);
    out["answer"] = t.score->answer ? Json(*t.score->answer) : Json(nullptr);
    out["exec_error_penalized"] = t.score->exec_error_penalized;
  }
  return out;
}

}  // namespace torl::actors
