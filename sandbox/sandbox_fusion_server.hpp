// SandboxFusionServer: `torl sandbox serve`. An HTTP/1.1 server (keep-alive) that speaks the
// SandboxFusion API, so that SandboxFusion clients (veRL, our own SandboxFusionClient) can use our
// isolated pool:
//   POST /run_code  {"code", "language": "python", ...}  -> the SandboxFusion response JSON
//   GET  /v1/ping                                         -> "pong"
// A body that is not a run_code request is HTTP 400 with {"error": "..."}; another path is 404; a
// language other than python is a SandboxFusion SandboxError response. The limits are the server's
// tool config (timeout_ms, memory_mb); the request's run_timeout and memory_limit_MB are not applied.
//
// One Boost.Asio thread, owned by the server, accepts and serves every connection; while code runs on
// the CodeRunner the connection waits without blocking the others. The runner's callbacks are posted
// back to that thread. The runner must outlive the server. Destroying the server stops accepting,
// closes connections, and waits for the snippets it handed to the runner.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "common/asio.hpp"
#include <boost/beast/core/tcp_stream.hpp>

#include "common/status.hpp"
#include "sandbox/code_runner.hpp"

namespace torl::sandbox {

class SandboxFusionServer {
 public:
  // Listens on `listen` ("HOST:PORT"; port 0 picks a free one) and serves until destroyed. Returns
  // once the socket is listening, or why it cannot listen (bad address, port in use).
  static Expected<std::unique_ptr<SandboxFusionServer>> start(const std::string& listen, CodeRunner& runner);
  ~SandboxFusionServer();
  SandboxFusionServer(const SandboxFusionServer&) = delete;
  SandboxFusionServer& operator=(const SandboxFusionServer&) = delete;

  // The address it listens on, with the port it got: "127.0.0.1:40123".
  std::string address() const;
  uint16_t port() const { return endpoint_.port(); }

 private:
  explicit SandboxFusionServer(CodeRunner& runner);
  Status listen(const std::string& address);
  boost::asio::awaitable<void> accept_loop();
  boost::asio::awaitable<void> serve(boost::beast::tcp_stream stream);
  // The response to one request; runs the code for POST /run_code.
  template <class Request, class Response>
  boost::asio::awaitable<void> answer(const Request& request, Response& response);
  boost::asio::awaitable<ExecutionResult> execute(std::string code);

  CodeRunner& runner_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::ip::tcp::endpoint endpoint_;  // what acceptor_ is bound to; set before serving

  // Touched only on the io thread.
  std::set<boost::beast::tcp_stream*> connections_;
  bool stopping_ = false;

  // Snippets handed to the runner whose callback has not returned yet.
  std::mutex running_mutex_;
  std::condition_variable running_done_;
  int running_ = 0;  // guarded by running_mutex_

  std::thread thread_;  // runs io_; last member so it starts after everything it uses exists
};

}  // namespace torl::sandbox
