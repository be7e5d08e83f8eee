// SandboxFusionClient: the CodeRunner for `tool.backend: sandbox_fusion`. Sends each snippet as
// POST {url}/run_code to a SandboxFusion server (or `torl sandbox serve`) over keep-alive HTTP/1.1
// connections, driven by one Boost.Asio thread that the client owns.
//
// At most `sandbox_fusion.max_concurrency` requests are in flight (one connection each; idle ones are
// kept for reuse); the rest wait in a queue of at most `tool.max_queue`. Connection errors and 5xx
// answers are retried `sandbox_fusion.max_retries` times with doubling backoff. Each attempt has a
// deadline of tool.timeout_ms + a margin, so no request hangs. Every submitted snippet ends with
// exactly one callback on the client's thread: the server's verdict as an ExecutionResult, or
// kSandboxError saying what went wrong (url, HTTP status, the first bytes of the body).
// Destroying the client ends queued and in-flight snippets with kSandboxError.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/asio.hpp"
#include <boost/beast/core/tcp_stream.hpp>

#include "common/status.hpp"
#include "config/config.hpp"
#include "sandbox/code_runner.hpp"
#include "sandbox/execution_result.hpp"

namespace torl::sandbox {

// Where a SandboxFusion server listens: from "http://HOST:PORT[/PREFIX]".
struct HttpEndpoint {
  std::string host;
  std::string port;         // "80" when the URL names none
  std::string path_prefix;  // "" or "/prefix" (no trailing slash); requests go to prefix + "/run_code"

  // "http://host:port/prefix", for messages.
  std::string url() const;
};

// The endpoint in `url`, or kInvalidArgument saying what is wrong with it (only http:// is supported).
Expected<HttpEndpoint> parse_http_url(const std::string& url);

// Timing knobs that are not part of the config; tests shorten them.
struct SandboxFusionClientOptions {
  std::chrono::milliseconds deadline_margin{5000};  // added to tool.timeout_ms for each attempt
  std::chrono::milliseconds first_backoff{200};     // wait before the first retry; doubles after
};

class SandboxFusionClient : public CodeRunner {
 public:
  // Checks `tool.sandbox_fusion.url` and starts the client's thread. Does not contact the server:
  // an unreachable one shows up as kSandboxError results (after the retries).
  static Expected<std::unique_ptr<SandboxFusionClient>> start(const config::ToolConfig& tool,
                                                              SandboxFusionClientOptions options = {});
  ~SandboxFusionClient() override;
  SandboxFusionClient(const SandboxFusionClient&) = delete;
  SandboxFusionClient& operator=(const SandboxFusionClient&) = delete;

  // Queues `code`; `done` runs once on the client's thread and must not block. Any thread.
  void submit(std::string code, Done done) override;

  // Runs `code` and waits for its result. Not to be called from the client's thread.
  ExecutionResult run(std::string code);

  size_t queue_depth() const override { return queue_depth_; }

 private:
  struct Call {
    std::string code;
    Done done;
    std::chrono::steady_clock::time_point queued_at;
  };
  struct Reply;  // one attempt's outcome

  SandboxFusionClient(config::ToolConfig tool, HttpEndpoint endpoint,
                      std::vector<boost::asio::ip::tcp::endpoint> addresses, SandboxFusionClientOptions options);
  void start_next();
  boost::asio::awaitable<void> perform(Call call);
  boost::asio::awaitable<Reply> exchange(const std::string& body);
  // Writes the request and reads the answer into `reply`; true when the connection may be reused.
  boost::asio::awaitable<bool> exchange_on(boost::beast::tcp_stream& stream, const std::string& body, Reply& reply);
  void shut_down();

  const config::ToolConfig tool_;
  const HttpEndpoint endpoint_;
  const std::vector<boost::asio::ip::tcp::endpoint> addresses_;  // endpoint_.host, resolved at start
  const SandboxFusionClientOptions options_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;

  // Touched only on the io thread.
  std::deque<Call> queue_;
  int in_flight_ = 0;                                           // calls being performed
  std::vector<std::unique_ptr<boost::beast::tcp_stream>> idle_;  // open keep-alive connections
  std::set<boost::beast::tcp_stream*> busy_;                    // connections with a request on them
  std::set<boost::asio::steady_timer*> backoffs_;               // retries waiting
  bool stopping_ = false;

  std::atomic<size_t> queue_depth_{0};  // queue_.size(), for any thread

  std::thread thread_;  // runs io_; last member so it starts after everything it uses exists
};

}  // namespace torl::sandbox
