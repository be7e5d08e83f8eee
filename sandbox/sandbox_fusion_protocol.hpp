// The SandboxFusion wire format of POST /run_code, both ways: the request our client sends and our
// server reads, and the response our server writes and our client reads. Pure functions on strings;
// safe from any thread. The HTTP side lives in sandbox_fusion_client.hpp and sandbox_fusion_server.hpp.
//
// Request:  {"code": "...", "language": "python", "run_timeout": 10.0, "memory_limit_MB": 1024,
//            "stdin": "..." | null, "files": {"path": "base64" | null}, "fetch_files": ["path"],
//            "compile_timeout": 10.0, "args": []}    (compile_timeout and args do not apply to python)
// Response: {"status": "Success" | "Failed" | "SandboxError", "message": "...", "compile_result": null,
//            "run_result": {"status": "Finished" | "Error" | "TimeLimitExceeded", "return_code": 0,
//                           "stdout": "...", "stderr": "...", "execution_time": 0.01} | null,
//            "executor_pod_name": "host" | null, "files": {"path": "base64"},
//            "truncated": false, "torl_status": "ok" | "memory" | ...}
// A request that does not validate is answered as FastAPI does: HTTP 422 with
//            {"detail": [{"type": "missing", "loc": ["body", "code"], "msg": "Field required", "input": ...}]}
// Numbers are coerced as pydantic does: 1024.0 and "5" are accepted where an integer or number goes.
// `truncated` and `torl_status` are our extensions (SandboxFusion clients ignore them): whether
// stdout or stderr was cut at the cap, and the statuses SandboxFusion has no name for (memory,
// output_limit, killed), kept across a torl client and a torl server.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/json.hpp"
#include "common/status.hpp"
#include "config/config.hpp"
#include "sandbox/execution_result.hpp"
#include "sandbox/run_request.hpp"

namespace torl::sandbox {

// A /run_code request as the server reads it, every field checked.
struct RunCodeRequest {
  std::string code;
  std::string language;                    // one of SandboxFusion's names, e.g. "python"
  std::optional<double> run_timeout_s;     // > 0 when present
  std::optional<int> memory_limit_mb;      // <= 0 (SandboxFusion's default -1): no limit of its own
  std::optional<std::string> stdin_text;
  std::vector<std::pair<std::string, std::string>> files;  // safe relative path -> base64 (null ones dropped)
  std::vector<std::string> fetch_files;                    // safe relative paths
};

// One problem with a request, as FastAPI lists it in a 422 answer's "detail".
struct RequestProblem {
  Json loc;          // where: ["body", "run_timeout"], ["body", "files", "../x"], ["body", "fetch_files", 0]
  std::string msg;   // "Field required", "Input should be a valid integer, ...", ...
  std::string type;  // pydantic's name for the problem: "missing", "string_type", "literal_error", ...
  Json input;        // the value that was refused
};

// The outcome of reading a request body: the request when `problems` is empty.
struct ParsedRunCodeRequest {
  RunCodeRequest request;
  std::vector<RequestProblem> problems;

  bool ok() const { return problems.empty(); }
  // All problems in one line, each naming its field: "body.code: Field required; ...".
  std::string message() const;
};

// Reads and checks a /run_code body: JSON object, code (string), language (one of SandboxFusion's
// names), run_timeout and compile_timeout (numbers > 0), memory_limit_MB (integer), stdin (string or
// null), files (object of path -> base64 string or null), fetch_files (list of paths); paths must stay
// inside the working directory. Every problem is reported, not only the first.
ParsedRunCodeRequest parse_run_code_request(std::string_view body);

// The 422 body for `problems`: {"detail": [...]}.
std::string validation_error_body(const std::vector<RequestProblem>& problems);

// How the pool runs `request`: from a file in the working directory, with its stdin and files, its
// limits (the pool caps them at its own), and output past the cap dropped while the program runs on.
RunRequest to_run_request(RunCodeRequest request);

// Whether `name` is one of SandboxFusion's language names ("python", "cpp", ...).
bool is_sandbox_fusion_language(std::string_view name);

// The JSON body asking to run `code` under `tool`'s limits (run_timeout from timeout_ms,
// memory_limit_MB from memory_mb).
std::string run_code_request_body(std::string_view code, const config::ToolConfig& tool);

// The response body for a finished execution (any status, kSandboxError included);
// `executor_pod_name` null when `pod_name` is empty.
std::string run_code_response_body(const ExecutionResult& result, std::string_view pod_name = "");

// The response body for a request the sandbox could not run (an unsupported language, ...):
// top-level status SandboxError with `message`.
std::string sandbox_error_response_body(std::string_view message, std::string_view pod_name = "");

// What the response `body` says became of the code, with stdout and stderr each cut at
// `max_output_bytes`. Statuses map as: Success -> ok; Failed + Finished -> error (or killed for a
// negative return code); Error -> error; TimeLimitExceeded -> timeout; SandboxError -> sandbox_error
// with the server's message. A body that is not such JSON is kInvalidArgument saying what is wrong.
Expected<ExecutionResult> parse_run_code_response(std::string_view body, int max_output_bytes);

// The first `max_bytes` of `body` for an error message, with "..." when cut.
std::string body_excerpt(std::string_view body, size_t max_bytes = 200);

}  // namespace torl::sandbox
