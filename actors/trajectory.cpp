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

std::string Trajectory::infra_failure() const {
  for (size_t i = 0; i < tool_calls.size(); ++i) {
    const auto& result = tool_calls[i].result;
    if (result.status != sandbox::ExecutionStatus::kSandboxError) continue;
    const std::string& why = result.stderr_text;
    return "sandbox failed call " + std::to_string(i + 1) + ": " + why.substr(0, why.find('\n'));
  }
  if (!score) return error.empty() ? std::string("not scored") : error;
  return "";
}

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

namespace {

template <class Enum, class NameOf>
Expected<Enum> enum_from_name(const std::string& name, std::initializer_list<Enum> values, NameOf name_of,
                              const char* field) {
  for (const Enum value : values) {
    if (name == name_of(value)) return value;
  }
  return invalid_argument(std::string("'") + field + "': unknown value '" + name + "'");
}

}  // namespace

Expected<Trajectory> trajectory_from_json(const Json& r) {
  try {
    Trajectory t;
    t.job.id = r.at("id").get<int64_t>();
    t.job.dataset = r.at("dataset").get<std::string>();
    t.job.problem = r.at("problem").get<int64_t>();
    t.job.problem_id = r.at("problem_id").get<std::string>();
    t.job.sample = r.at("sample").get<int>();
    t.job.seed = r.at("seed").get<uint64_t>();
    t.job.generator = r.at("generator").get<int>();
    t.job.gold_answer = r.at("gold_answer").get<std::string>();
    t.job.prompt = r.at("prompt").get<std::vector<int32_t>>();
    t.response = r.at("response").get<std::vector<int32_t>>();
    t.loss_mask = r.at("loss_mask").get<std::vector<uint8_t>>();
    t.logprobs = r.at("logprobs").get<std::vector<float>>();
    t.versions = r.at("versions").get<std::vector<int32_t>>();
    t.text = r.at("text").get<std::string>();
    t.void_calls = r.at("void_calls").get<int>();
    t.started_ms = r.at("started_ms").get<double>();
    t.finished_ms = r.at("finished_ms").get<double>();
    t.error = r.value("error", std::string());
    auto finish = enum_from_name(r.at("finish").get<std::string>(),
                                 {FinishReason::kNone, FinishReason::kStopString, FinishReason::kEos,
                                  FinishReason::kLength, FinishReason::kCacheFull, FinishReason::kError},
                                 finish_reason_name, "finish");
    if (!finish) return finish.status();
    t.finish = *finish;
    for (const Json& c : r.at("tool_calls")) {
      ToolCall call;
      call.code = c.at("code").get<std::string>();
      const std::string status = c.at("status").get<std::string>();
      const auto names = enum_names(sandbox::ExecutionStatus{});
      const auto known = std::find_if(names.begin(), names.end(), [&](const auto& entry) { return status == entry.second; });
      if (known == names.end()) return invalid_argument("'tool_calls[].status': unknown value '" + status + "'");
      call.result.status = known->first;
      call.result.exit_code = c.at("exit_code").get<int>();
      call.result.signal = c.at("signal").get<int>();
      call.result.stdout_text = c.at("stdout").get<std::string>();
      call.result.stderr_text = c.at("stderr").get<std::string>();
      call.result.truncated = c.at("truncated").get<bool>();
      call.result.queue_ms = c.at("queue_ms").get<double>();
      call.result.wall_ms = c.at("wall_ms").get<double>();
      call.observation = c.at("observation").get<std::string>();
      call.response_offset = c.at("response_offset").get<int64_t>();
      call.tool_tokens = c.at("tool_tokens").get<int64_t>();
      call.latency_ms = c.at("latency_ms").get<double>();
      t.tool_calls.push_back(std::move(call));
    }
    if (r.contains("reward")) {
      rewards::Score score;
      score.reward = r.at("reward").get<double>();
      auto outcome = enum_from_name(r.at("outcome").get<std::string>(),
                                    {rewards::Outcome::kCorrect, rewards::Outcome::kWrong, rewards::Outcome::kNoAnswer},
                                    rewards::outcome_name, "outcome");
      if (!outcome) return outcome.status();
      score.outcome = *outcome;
      if (r.at("answer").is_string()) score.answer = r.at("answer").get<std::string>();
      score.exec_error_penalized = r.at("exec_error_penalized").get<bool>();
      t.score = score;
    }
    const size_t n = t.response.size();
    if (t.loss_mask.size() != n || t.logprobs.size() != n || t.versions.size() != n) {
      return invalid_argument("response, loss_mask, logprobs and versions differ in length");
    }
    return t;
  } catch (const Json::exception& e) {
    return invalid_argument(std::string("not a recorded trajectory: ") + e.what());
  }
}

}  // namespace torl::actors
