// SandboxFusionServer: `torl sandbox serve`. An HTTP/1.1 server (keep-alive) that speaks the
// SandboxFusion API, so that SandboxFusion clients (veRL, SandboxFusion's SDK, our own
// SandboxFusionClient) can use our isolated pool:
//   POST /run_code (or /run_code/)  {"code", "language": "python", ...}  -> the SandboxFusion response
//   GET  /v1/ping                    -> "pong" (a JSON string)
//   GET  /v1/status                  -> {"workers", "running", "queued", "requests_in_flight", "executions",
//                                        "latency_p50_ms", "latency_p99_ms", "max_queue", "timeout_ms", "memory_mb"}
// The request format and its checks are in sandbox_fusion_protocol.hpp. A body that does not
// validate (not JSON, a missing or mistyped field, an unknown language, an escaping path) is HTTP 422
// with FastAPI's {"detail": [...]}; another path is 404 and another method 405, both {"detail": "..."}.
// A SandboxFusion language other than python is answered with status SandboxError.
//
// Each snippet runs as SandboxFusion runs python: from a file in a fresh working directory, with the
// request's stdin and files, under the request's run_timeout and memory_limit_MB capped by the
// runner's own limits (tool.timeout_ms, tool.memory_mb). Output past tool.max_output_bytes is cut
// and flagged `truncated`; the program runs on to its end and its own exit status is reported.
//
// Served by an HttpServer (common/http_server.hpp): while code runs on the CodeRunner its connection
// waits without blocking the others. The runner must outlive the server. Destroying the server stops
// accepting, closes idle connections, and waits for the snippets it handed to the runner, whose
// answers still reach their clients.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "common/http_server.hpp"
#include "common/status.hpp"
#include "sandbox/code_runner.hpp"

namespace torl::sandbox {

class SandboxFusionServer {
 public:
  // Listens on `listen` ("HOST:PORT"; port 0 picks a free one) and serves until destroyed. Returns
  // once the socket is listening, or why it cannot listen (bad address, port in use). `pod_name`
  // is each answer's executor_pod_name (null when empty): which node of a cluster ran the code.
  static Expected<std::unique_ptr<SandboxFusionServer>> start(const std::string& listen, CodeRunner& runner,
                                                              std::string pod_name = "");

  // The address it listens on, with the port it got: "127.0.0.1:40123".
  std::string address() const { return http_->address(); }
  uint16_t port() const { return http_->port(); }

 private:
  struct State {
    CodeRunner& runner;
    std::string pod_name;
    std::atomic<size_t> in_flight{0};  // /run_code requests handed to the runner, not answered yet
  };
  SandboxFusionServer() = default;

  std::unique_ptr<State> state_;      // outlives http_, whose handler uses it
  std::unique_ptr<HttpServer> http_;  // destroyed first: waits for the answers it owes
};

}  // namespace torl::sandbox
