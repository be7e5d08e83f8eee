// The SandboxFusion wire format of POST /run_code, both ways: the request our client sends and our
// server reads, and the response our server writes and our client reads. Pure functions on strings;
// safe from any thread. The HTTP side lives in sandbox_fusion_client.hpp and sandbox_fusion_server.hpp.
//
// Request:  {"code": "...", "language": "python", "run_timeout": 10.0, "memory_limit_MB": 1024}
// Response: {"status": "Success" | "Failed" | "SandboxError", "message": "...",
//            "run_result": {"status": "Finished" | "Error" | "TimeLimitExceeded", "return_code": 0,
//                           "stdout": "...", "stderr": "...", "execution_time": 0.01} | null,
//            "torl_status": "ok" | "memory" | ...}
// `torl_status` is our extension (SandboxFusion clients ignore it): it keeps statuses SandboxFusion
// has no name for (memory, output_limit, killed) across a torl client and a torl server.
#pragma once

#include <string>
#include <string_view>

#include "common/status.hpp"
#include "config/config.hpp"
#include "sandbox/execution_result.hpp"

namespace torl::sandbox {

// A /run_code request as the server reads it.
struct RunCodeRequest {
  std::string code;
  std::string language;       // SandboxFusion's name, e.g. "python"
  double run_timeout_s = 0;   // 0 when absent
  int memory_limit_mb = 0;    // 0 when absent
};

// The JSON body asking to run `code` under `tool`'s limits (run_timeout from timeout_ms,
// memory_limit_MB from memory_mb).
std::string run_code_request_body(std::string_view code, const config::ToolConfig& tool);

// The request in `body`, or kInvalidArgument naming the field that is missing or of the wrong type.
Expected<RunCodeRequest> parse_run_code_request(std::string_view body);

// The response body for a finished execution (any status, kSandboxError included).
std::string run_code_response_body(const ExecutionResult& result);

// The response body for a request the sandbox could not run (an unsupported language, ...):
// top-level status SandboxError with `message`.
std::string sandbox_error_response_body(std::string_view message);

// What the response `body` says became of the code, with stdout and stderr each cut at
// `max_output_bytes`. Statuses map as: Success -> ok; Failed + Finished -> error (or killed for a
// negative return code); Error -> error; TimeLimitExceeded -> timeout; SandboxError -> sandbox_error
// with the server's message. A body that is not such JSON is kInvalidArgument saying what is wrong.
Expected<ExecutionResult> parse_run_code_response(std::string_view body, int max_output_bytes);

// The first `max_bytes` of `body` for an error message, with "..." when cut.
std::string body_excerpt(std::string_view body, size_t max_bytes = 200);

}  // namespace torl::sandbox
