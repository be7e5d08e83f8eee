#include "sandbox/sandbox_fusion_protocol.hpp"

#include <optional>

#include "common/json.hpp"

namespace torl::sandbox {

namespace {

using OrderedJson = nlohmann::ordered_json;

// Serialises without throwing on invalid UTF-8 in the code's output (replaced with U+FFFD).
std::string dump(const OrderedJson& value) { return value.dump(-1, ' ', false, Json::error_handler_t::replace); }

std::optional<ExecutionStatus> status_from_name(std::string_view name) {
  for (const auto& [value, text] : enum_names(ExecutionStatus{})) {
    if (name == text) return value;
  }
  return std::nullopt;
}

// A string field that may be absent or null ("" then), or an error naming it.
Expected<std::string> optional_string(const Json& object, const char* key, const std::string& where) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::string();
  if (!it->is_string()) {
    return invalid_argument(where + "field '" + key + "' must be a string (got " + json_type_name(*it) + ")");
  }
  return it->get<std::string>();
}

// Cuts `text` at `max_bytes`; true when it was cut.
bool cut(std::string& text, int max_bytes) {
  if (max_bytes <= 0 || text.size() <= static_cast<size_t>(max_bytes)) return false;
  text.resize(static_cast<size_t>(max_bytes));
  return true;
}

}  // namespace

std::string body_excerpt(std::string_view body, size_t max_bytes) {
  if (body.size() <= max_bytes) return std::string(body);
  return std::string(body.substr(0, max_bytes)) + "...";
}

std::string run_code_request_body(std::string_view code, const config::ToolConfig& tool) {
  const OrderedJson request = {{"code", code},
                               {"language", "python"},
                               {"run_timeout", tool.timeout_ms / 1000.0},
                               {"memory_limit_MB", tool.memory_mb}};
  return dump(request);
}

Expected<RunCodeRequest> parse_run_code_request(std::string_view body) {
  auto json = parse_json(body, "request body");
  if (!json) return json.status();
  RunCodeRequest request;
  auto code = required_field<std::string>(*json, "code", "request body");
  if (!code) return code.status();
  request.code = std::move(*code);
  auto language = required_field<std::string>(*json, "language", "request body");
  if (!language) return language.status();
  request.language = std::move(*language);
  if (const auto it = json->find("run_timeout"); it != json->end() && !it->is_null()) {
    if (!it->is_number()) return invalid_argument("request body: field 'run_timeout' must be a number of seconds");
    request.run_timeout_s = it->get<double>();
  }
  if (const auto it = json->find("memory_limit_MB"); it != json->end() && !it->is_null()) {
    if (!it->is_number_integer()) return invalid_argument("request body: field 'memory_limit_MB' must be an integer");
    request.memory_limit_mb = it->get<int>();
  }
  return request;
}

std::string run_code_response_body(const ExecutionResult& result) {
  if (result.status == ExecutionStatus::kSandboxError) {
    OrderedJson response = {{"status", "SandboxError"},
                            {"message", result.stderr_text},
                            {"run_result", nullptr},
                            {"torl_status", status_name(result.status)}};
    return dump(response);
  }
  // SandboxFusion reports a process killed by signal N as return code -N, as Python's subprocess does.
  OrderedJson return_code = result.exit_code >= 0 ? OrderedJson(result.exit_code) : OrderedJson(-result.signal);
  if (result.status == ExecutionStatus::kTimeout) return_code = nullptr;
  const OrderedJson run_result = {
      {"status", result.status == ExecutionStatus::kTimeout ? "TimeLimitExceeded" : "Finished"},
      {"return_code", return_code},
      {"stdout", result.stdout_text},
      {"stderr", result.stderr_text},
      {"execution_time", result.wall_ms / 1000.0}};
  const OrderedJson response = {{"status", result.status == ExecutionStatus::kOk ? "Success" : "Failed"},
                                {"message", ""},
                                {"run_result", run_result},
                                {"truncated", result.truncated},
                                {"torl_status", status_name(result.status)}};
  return dump(response);
}

std::string sandbox_error_response_body(std::string_view message) {
  return dump(OrderedJson{{"status", "SandboxError"}, {"message", message}, {"run_result", nullptr}});
}

Expected<ExecutionResult> parse_run_code_response(std::string_view body, int max_output_bytes) {
  auto json = parse_json(body, "response body");
  if (!json) return json.status();
  auto status = required_field<std::string>(*json, "status", "response body");
  if (!status) return status.status();
  auto message = optional_string(*json, "message", "response body: ");
  if (!message) return message.status();

  ExecutionResult result;
  if (*status == "SandboxError") {
    result = sandbox_error("the SandboxFusion server reported a sandbox error: " +
                           (message->empty() ? std::string("(no message)") : *message));
    return result;
  }
  if (*status != "Success" && *status != "Failed") {
    return invalid_argument("response body: field 'status' must be Success, Failed or SandboxError (got '" +
                            *status + "')");
  }
  const auto run = json->find("run_result");
  if (run == json->end() || !run->is_object()) {
    // SandboxFusion answers so when the code did not get to run (a compile step failed, ...).
    return sandbox_error("the SandboxFusion server answered " + *status + " without a run_result" +
                         (message->empty() ? std::string() : ": " + *message));
  }
  auto run_status = required_field<std::string>(*run, "status", "response body: run_result");
  if (!run_status) return run_status.status();
  auto out = optional_string(*run, "stdout", "response body: run_result: ");
  if (!out) return out.status();
  auto err = optional_string(*run, "stderr", "response body: run_result: ");
  if (!err) return err.status();
  result.stdout_text = std::move(*out);
  result.stderr_text = std::move(*err);

  std::optional<int> return_code;
  if (const auto it = run->find("return_code"); it != run->end() && !it->is_null()) {
    if (!it->is_number_integer()) return invalid_argument("response body: run_result: field 'return_code' must be an integer");
    return_code = it->get<int>();
  }
  if (const auto it = run->find("execution_time"); it != run->end() && it->is_number()) {
    result.wall_ms = it->get<double>() * 1000.0;
  }

  if (*run_status == "TimeLimitExceeded") {
    result.status = ExecutionStatus::kTimeout;
  } else if (*run_status == "Finished" || *run_status == "Error") {
    const int code = return_code.value_or(*run_status == "Error" ? 1 : 0);
    if (code < 0) {
      result.status = ExecutionStatus::kKilled;
      result.signal = -code;
    } else {
      result.exit_code = code;
      result.status = (*status == "Success" && code == 0) ? ExecutionStatus::kOk : ExecutionStatus::kError;
    }
  } else {
    return invalid_argument("response body: run_result: field 'status' must be Finished, Error or "
                            "TimeLimitExceeded (got '" + *run_status + "')");
  }
  // A torl server names statuses SandboxFusion has none for (memory, output_limit, killed).
  if (const auto it = json->find("torl_status"); it != json->end() && it->is_string()) {
    if (const auto exact = status_from_name(it->get<std::string>())) result.status = *exact;
  }
  if (const auto it = json->find("truncated"); it != json->end() && it->is_boolean()) result.truncated = it->get<bool>();
  const bool cut_stdout = cut(result.stdout_text, max_output_bytes);
  const bool cut_stderr = cut(result.stderr_text, max_output_bytes);
  result.truncated = result.truncated || cut_stdout || cut_stderr;
  return result;
}

}  // namespace torl::sandbox
