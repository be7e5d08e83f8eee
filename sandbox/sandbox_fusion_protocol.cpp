#include "sandbox/sandbox_fusion_protocol.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <iterator>
#include <limits>
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

// SandboxFusion's language names: the values its request model accepts. This server runs python;
// the others are valid requests it answers with a SandboxError.
constexpr std::string_view kLanguages[] = {
    "python", "cpp", "nodejs", "go", "go_test", "java", "php", "csharp", "bash", "typescript", "sql",
    "rust", "cuda", "lua", "R", "perl", "D_ut", "ruby", "scala", "julia", "pytest", "junit",
    "kotlin_script", "jest", "verilog", "python_gpu", "lean", "swift", "racket"};

constexpr std::string_view kPathRule =
    "Value error, the path must be relative and stay inside the working directory (no '..', no leading '/')";

// "'python', 'cpp', ... or 'racket'", as pydantic lists a literal's values.
std::string sandbox_fusion_language_list() {
  std::string text;
  const size_t count = std::size(kLanguages);
  for (size_t i = 0; i < count; ++i) {
    if (i > 0) text += i + 1 == count ? " or " : ", ";
    text += "'" + std::string(kLanguages[i]) + "'";
  }
  return text;
}

// A number as pydantic's lax mode reads it: a JSON number, or a string holding one. `type` is empty
// when it is fine, else pydantic's name for the problem, with `message`.
struct Coerced {
  double value = 0;
  std::string type, message;
};

Coerced coerce_number(const Json& value, bool integer) {
  const char* kind = integer ? "integer" : "number";
  Coerced out;
  if (value.is_number()) {
    out.value = value.get<double>();
  } else if (value.is_string()) {
    std::string text = value.get<std::string>();
    const auto first = text.find_first_not_of(" \t\n\r");
    const auto last = text.find_last_not_of(" \t\n\r");
    text = first == std::string::npos ? "" : text.substr(first, last - first + 1);
    char* end = nullptr;
    errno = 0;
    out.value = text.empty() ? 0 : std::strtod(text.c_str(), &end);
    if (text.empty() || end != text.c_str() + text.size() || errno == ERANGE || !std::isfinite(out.value)) {
      out.type = integer ? "int_parsing" : "float_parsing";
      out.message = std::string("Input should be a valid ") + kind + ", unable to parse string as " +
                    (integer ? "an integer" : "a number");
      return out;
    }
  } else {
    out.type = integer ? "int_type" : "float_type";
    out.message = std::string("Input should be a valid ") + kind;
    return out;
  }
  if (integer && out.value != std::floor(out.value)) {
    out.type = "int_from_float";
    out.message = "Input should be a valid integer, got a number with a fractional part";
  } else if (integer && std::fabs(out.value) > static_cast<double>(std::numeric_limits<int>::max())) {
    out.type = "int_type";
    out.message = "Input should be a valid integer, the number is too large";
  }
  return out;
}

}  // namespace

bool is_sandbox_fusion_language(std::string_view name) {
  return std::find(std::begin(kLanguages), std::end(kLanguages), name) != std::end(kLanguages);
}

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

std::string ParsedRunCodeRequest::message() const {
  std::string text;
  for (const RequestProblem& problem : problems) {
    if (!text.empty()) text += "; ";
    std::string where;
    for (const Json& part : problem.loc) {
      if (!where.empty()) where += ".";
      where += part.is_string() ? part.get<std::string>() : part.dump();
    }
    text += where + ": " + problem.msg;
  }
  return text;
}

ParsedRunCodeRequest parse_run_code_request(std::string_view body) {
  ParsedRunCodeRequest parsed;
  auto& problems = parsed.problems;
  RunCodeRequest& request = parsed.request;
  Json json;
  try {
    json = Json::parse(body);
  } catch (const Json::parse_error& e) {
    problems.push_back({Json::array({"body", e.byte}), "JSON decode error", "json_invalid", Json::object()});
    return parsed;
  }
  if (!json.is_object()) {
    problems.push_back({Json::array({"body"}), "Input should be a valid dictionary or object to extract fields from",
                        "model_attributes_type", json});
    return parsed;
  }
  auto problem = [&](const Json& loc, std::string msg, std::string type, const Json& input) {
    problems.push_back({loc, std::move(msg), std::move(type), input});
  };
  auto field = [&](const char* key) -> const Json* {
    const auto it = json.find(key);
    return it == json.end() ? nullptr : &*it;
  };
  auto loc = [](const char* key) { return Json::array({"body", key}); };
  auto required_string = [&](const char* key, std::string& out) {
    const Json* value = field(key);
    if (value == nullptr) return problem(loc(key), "Field required", "missing", json);
    if (!value->is_string()) return problem(loc(key), "Input should be a valid string", "string_type", *value);
    out = value->get<std::string>();
  };
  required_string("code", request.code);
  required_string("language", request.language);
  if (field("language") != nullptr && field("language")->is_string() && !is_sandbox_fusion_language(request.language)) {
    problem(loc("language"), "Input should be " + sandbox_fusion_language_list(), "literal_error", request.language);
  }
  for (const char* key : {"run_timeout", "compile_timeout"}) {
    const Json* value = field(key);
    if (value == nullptr || value->is_null()) continue;
    const auto number = coerce_number(*value, false);
    if (!number.type.empty()) {
      problem(loc(key), number.message, number.type, *value);
    } else if (!(number.value > 0)) {
      problem(loc(key), "Input should be greater than 0", "greater_than", *value);
    } else if (std::string_view(key) == "run_timeout") {
      request.run_timeout_s = number.value;
    }
  }
  if (const Json* value = field("memory_limit_MB"); value != nullptr && !value->is_null()) {
    const auto number = coerce_number(*value, true);
    if (!number.type.empty()) {
      problem(loc("memory_limit_MB"), number.message, number.type, *value);
    } else {
      request.memory_limit_mb = static_cast<int>(number.value);
    }
  }
  if (const Json* value = field("stdin"); value != nullptr && !value->is_null()) {
    if (value->is_string()) {
      request.stdin_text = value->get<std::string>();
    } else {
      problem(loc("stdin"), "Input should be a valid string", "string_type", *value);
    }
  }
  if (const Json* value = field("files"); value != nullptr) {
    if (!value->is_object()) {
      problem(loc("files"), "Input should be a valid dictionary", "dict_type", *value);
    } else {
      for (const auto& [path, content] : value->items()) {
        const Json where = Json::array({"body", "files", path});
        if (!is_safe_relative_path(path)) {
          problem(where, std::string(kPathRule), "value_error", path);
        } else if (content.is_null()) {
          continue;  // SandboxFusion skips a file without content
        } else if (!content.is_string()) {
          problem(where, "Input should be a valid string", "string_type", content);
        } else if (!is_base64(content.get<std::string>())) {
          problem(where, "Value error, the content must be base64", "value_error", content);
        } else {
          request.files.emplace_back(path, content.get<std::string>());
        }
      }
    }
  }
  if (const Json* value = field("fetch_files"); value != nullptr) {
    if (!value->is_array()) {
      problem(loc("fetch_files"), "Input should be a valid list", "list_type", *value);
    } else {
      for (size_t i = 0; i < value->size(); ++i) {
        const Json& path = (*value)[i];
        const Json where = Json::array({"body", "fetch_files", i});
        if (!path.is_string()) {
          problem(where, "Input should be a valid string", "string_type", path);
        } else if (!is_safe_relative_path(path.get<std::string>())) {
          problem(where, std::string(kPathRule), "value_error", path);
        } else {
          request.fetch_files.push_back(path.get<std::string>());
        }
      }
    }
  }
  return parsed;
}

std::string validation_error_body(const std::vector<RequestProblem>& problems) {
  OrderedJson detail = OrderedJson::array();
  for (const RequestProblem& problem : problems) {
    detail.push_back(OrderedJson{{"type", problem.type}, {"loc", problem.loc}, {"msg", problem.msg}, {"input", problem.input}});
  }
  return dump(OrderedJson{{"detail", std::move(detail)}});
}

RunRequest to_run_request(RunCodeRequest request) {
  RunRequest run;
  run.code = std::move(request.code);
  run.stdin_text = std::move(request.stdin_text);
  run.files = std::move(request.files);
  run.fetch_files = std::move(request.fetch_files);
  if (request.run_timeout_s) {
    // Rounded up to whole milliseconds; the pool caps it at its own limit.
    const double ms = std::ceil(*request.run_timeout_s * 1000.0);
    run.timeout_ms = ms >= static_cast<double>(std::numeric_limits<int>::max()) ? std::numeric_limits<int>::max()
                                                                                : std::max(1, static_cast<int>(ms));
  }
  if (request.memory_limit_mb && *request.memory_limit_mb > 0) run.memory_mb = *request.memory_limit_mb;
  run.as_file = true;
  run.overflow = OutputOverflow::kKeepRunning;
  return run;
}

std::string run_code_response_body(const ExecutionResult& result, std::string_view pod_name) {
  const OrderedJson pod = pod_name.empty() ? OrderedJson(nullptr) : OrderedJson(pod_name);
  OrderedJson files = OrderedJson::object();
  for (const auto& [path, content] : result.files) files[path] = content;
  if (result.status == ExecutionStatus::kSandboxError) {
    OrderedJson response = {{"status", "SandboxError"},
                            {"message", result.stderr_text},
                            {"compile_result", nullptr},
                            {"run_result", nullptr},
                            {"executor_pod_name", pod},
                            {"files", std::move(files)},
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
                                {"compile_result", nullptr},
                                {"run_result", run_result},
                                {"executor_pod_name", pod},
                                {"files", std::move(files)},
                                {"truncated", result.truncated},
                                {"torl_status", status_name(result.status)}};
  return dump(response);
}

std::string sandbox_error_response_body(std::string_view message, std::string_view pod_name) {
  return dump(OrderedJson{{"status", "SandboxError"},
                          {"message", message},
                          {"compile_result", nullptr},
                          {"run_result", nullptr},
                          {"executor_pod_name", pod_name.empty() ? OrderedJson(nullptr) : OrderedJson(pod_name)},
                          {"files", OrderedJson::object()}});
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
