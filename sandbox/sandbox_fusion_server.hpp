// SandboxFusionServer: `torl sandbox serve`. An HTTP/1.1 server (keep-alive) that speaks the
// SandboxFusion API, so that SandboxFusion clients (veRL, our own SandboxFusionClient) can use our
// isolated pool:
//   POST /run_code  {"code", "language": "python", ...}  -> the SandboxFusion response JSON
//   GET  /v1/ping                                         -> "pong"
// A body that is not a run_code request is HTTP 400 with {"error": "..."}; another path is 404; a
// language other than python is a SandboxFusion SandboxError response. The limits are the server's
// tool config (timeout_ms, memory_mb); the request's run_timeout and memory_limit_MB are not applied.
//
// Served by an HttpServer (common/http_server.hpp): while code runs on the CodeRunner its connection
// waits without blocking the others. The runner must outlive the server. Destroying the server stops
// accepting, closes idle connections, and waits for the snippets it handed to the runner, whose
// answers still reach their clients.
#pragma once

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
  // once the socket is listening, or why it cannot listen (bad address, port in use).
  static Expected<std::unique_ptr<SandboxFusionServer>> start(const std::string& listen, CodeRunner& runner);

  // The address it listens on, with the port it got: "127.0.0.1:40123".
  std::string address() const { return http_->address(); }
  uint16_t port() const { return http_->port(); }

 private:
  explicit SandboxFusionServer(std::unique_ptr<HttpServer> http) : http_(std::move(http)) {}
  std::unique_ptr<HttpServer> http_;
};

}  // namespace torl::sandbox
