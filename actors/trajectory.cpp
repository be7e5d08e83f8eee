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

bool Trajectory::code_failed(config::ExecErrorRule rule) const {
  if (tool_calls.empty()) return false;
  if (rule == config::ExecErrorRule::kAny) return tool_errors() > 0;
  const sandbox::ExecutionResult& last = tool_calls.back().result;  // ToRL: exit code 0 or any stdout passes
  if (last.status == sandbox::ExecutionStatus::kSandboxError) return true;
  return last.status != sandbox::ExecutionStatus::kOk && last.stdout_text.empty();
}

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
  Json cuts = Json::array();
  for (const Cut& cut : t.cuts) {
    cuts.push_back({{"response_offset", cut.response_offset},
                    {"tokens", cut.tokens},
                    {"logprobs", cut.logprobs},
                    {"versions", cut.versions},
                    {"kept_tokens", cut.kept_tokens},
                    {"void_call", cut.void_call}});
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
              {"cuts", cuts},
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
  std::string key;  // the field being read, for the error
  const auto field_value = [&key](const Json& object, const char* name) -> const Json& {
    key = name;
    return object.at(name);
  };
  try {
    Trajectory t;
    t.job.id = field_value(r, "id").get<int64_t>();
    t.job.dataset = field_value(r, "dataset").get<std::string>();
    t.job.problem = field_value(r, "problem").get<int64_t>();
    t.job.problem_id = field_value(r, "problem_id").get<std::string>();
    t.job.sample = field_value(r, "sample").get<int>();
    t.job.seed = field_value(r, "seed").get<uint64_t>();
    t.job.generator = field_value(r, "generator").get<int>();
    t.job.gold_answer = field_value(r, "gold_answer").get<std::string>();
    t.job.prompt = field_value(r, "prompt").get<std::vector<int32_t>>();
    t.response = field_value(r, "response").get<std::vector<int32_t>>();
    t.loss_mask = field_value(r, "loss_mask").get<std::vector<uint8_t>>();
    t.logprobs = field_value(r, "logprobs").get<std::vector<float>>();
    t.versions = field_value(r, "versions").get<std::vector<int32_t>>();
    t.text = field_value(r, "text").get<std::string>();
    t.void_calls = field_value(r, "void_calls").get<int>();
    t.started_ms = field_value(r, "started_ms").get<double>();
    t.finished_ms = field_value(r, "finished_ms").get<double>();
    t.error = r.value("error", std::string());
    auto finish = enum_from_name(field_value(r, "finish").get<std::string>(),
                                 {FinishReason::kNone, FinishReason::kStopString, FinishReason::kEos,
                                  FinishReason::kLength, FinishReason::kCacheFull, FinishReason::kError},
                                 finish_reason_name, "finish");
    if (!finish) return finish.status();
    t.finish = *finish;
    for (const Json& c : field_value(r, "tool_calls")) {
      ToolCall call;
      call.code = field_value(c, "code").get<std::string>();
      const std::string status = field_value(c, "status").get<std::string>();
      const auto names = enum_names(sandbox::ExecutionStatus{});
      const auto known = std::find_if(names.begin(), names.end(), [&](const auto& entry) { return status == entry.second; });
      if (known == names.end()) return invalid_argument("'tool_calls[].status': unknown value '" + status + "'");
      call.result.status = known->first;
      call.result.exit_code = field_value(c, "exit_code").get<int>();
      call.result.signal = field_value(c, "signal").get<int>();
      call.result.stdout_text = field_value(c, "stdout").get<std::string>();
      call.result.stderr_text = field_value(c, "stderr").get<std::string>();
      call.result.truncated = field_value(c, "truncated").get<bool>();
      call.result.queue_ms = field_value(c, "queue_ms").get<double>();
      call.result.wall_ms = field_value(c, "wall_ms").get<double>();
      call.observation = field_value(c, "observation").get<std::string>();
      call.response_offset = field_value(c, "response_offset").get<int64_t>();
      call.tool_tokens = field_value(c, "tool_tokens").get<int64_t>();
      call.latency_ms = field_value(c, "latency_ms").get<double>();
      t.tool_calls.push_back(std::move(call));
    }
    if (r.contains("cuts")) {  // absent in traces recorded before cuts existed
      for (const Json& c : field_value(r, "cuts")) {
        Cut cut;
        cut.response_offset = field_value(c, "response_offset").get<int64_t>();
        cut.tokens = field_value(c, "tokens").get<std::vector<int32_t>>();
        cut.logprobs = field_value(c, "logprobs").get<std::vector<float>>();
        cut.versions = field_value(c, "versions").get<std::vector<int32_t>>();
        cut.kept_tokens = field_value(c, "kept_tokens").get<int64_t>();
        cut.void_call = field_value(c, "void_call").get<bool>();
        if (cut.logprobs.size() != cut.tokens.size() || cut.versions.size() != cut.tokens.size()) {
          return invalid_argument("cuts[].tokens, logprobs and versions differ in length");
        }
        t.cuts.push_back(std::move(cut));
      }
    }
    if (r.contains("reward")) {
      rewards::Score score;
      score.reward = field_value(r, "reward").get<double>();
      auto outcome = enum_from_name(field_value(r, "outcome").get<std::string>(),
                                    {rewards::Outcome::kCorrect, rewards::Outcome::kWrong, rewards::Outcome::kNoAnswer},
                                    rewards::outcome_name, "outcome");
      if (!outcome) return outcome.status();
      score.outcome = *outcome;
      if (field_value(r, "answer").is_string()) score.answer = field_value(r, "answer").get<std::string>();
      score.exec_error_penalized = field_value(r, "exec_error_penalized").get<bool>();
      t.score = score;
    }
    const size_t n = t.response.size();
    if (t.loss_mask.size() != n || t.logprobs.size() != n || t.versions.size() != n) {
      return invalid_argument("response, loss_mask, logprobs and versions differ in length");
    }
    return t;
  } catch (const Json::exception& e) {
    const std::string what = e.what();
    // nlohmann's text after its "[json.exception.type_error.302] " tag
    const std::string reason = what.find("] ") != std::string::npos ? what.substr(what.find("] ") + 2) : what;
    if (key.empty()) return invalid_argument("not a recorded trajectory: " + reason);
    return invalid_argument("not a recorded trajectory: field '" + key + "': " + reason);
  }
}

}  // namespace torl::actors
