#include "sandbox/sandbox_fusion_client.hpp"

#include <algorithm>
#include <future>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "common/log.hpp"
#include "sandbox/sandbox_fusion_protocol.hpp"

namespace torl::sandbox {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

namespace {

constexpr uint64_t kMaxResponseBytes = 64ull << 20;

double elapsed_ms(Clock::time_point since) {
  return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

}  // namespace

std::string HttpEndpoint::url() const { return "http://" + host + ":" + port + path_prefix; }

Expected<HttpEndpoint> parse_http_url(const std::string& url) {
  constexpr std::string_view kScheme = "http://";
  const std::string where = "tool.sandbox_fusion.url '" + url + "'";
  if (url.empty()) return invalid_argument("tool.sandbox_fusion.url is empty; set it to the server, e.g. http://127.0.0.1:8080");
  if (url.rfind(kScheme, 0) != 0) return invalid_argument(where + ": only http:// URLs are supported");
  std::string rest = url.substr(kScheme.size());
  HttpEndpoint endpoint;
  const size_t slash = rest.find('/');
  if (slash != std::string::npos) {
    endpoint.path_prefix = rest.substr(slash);
    rest.resize(slash);
    while (!endpoint.path_prefix.empty() && endpoint.path_prefix.back() == '/') endpoint.path_prefix.pop_back();
  }
  const size_t colon = rest.rfind(':');
  if (colon != std::string::npos && rest.find(']', colon) == std::string::npos) {
    endpoint.host = rest.substr(0, colon);
    endpoint.port = rest.substr(colon + 1);
  } else {
    endpoint.host = rest;
    endpoint.port = "80";
  }
  if (endpoint.host.size() > 2 && endpoint.host.front() == '[' && endpoint.host.back() == ']') {
    endpoint.host = endpoint.host.substr(1, endpoint.host.size() - 2);
  }
  if (endpoint.host.empty()) return invalid_argument(where + ": no host");
  if (endpoint.port.empty() || !std::all_of(endpoint.port.begin(), endpoint.port.end(), ::isdigit)) {
    return invalid_argument(where + ": the port must be a number");
  }
  return endpoint;
}

// One attempt at a request: a transport error, or the HTTP answer.
struct SandboxFusionClient::Reply {
  error_code error;          // connect, write or read failed
  bool timed_out = false;    // ... because the attempt's deadline passed
  unsigned http_status = 0;
  std::string body;
};

SandboxFusionClient::SandboxFusionClient(config::ToolConfig tool, HttpEndpoint endpoint,
                                         std::vector<asio::ip::tcp::endpoint> addresses,
                                         SandboxFusionClientOptions options)
    : tool_(std::move(tool)),
      endpoint_(std::move(endpoint)),
      addresses_(std::move(addresses)),
      options_(options),
      work_(asio::make_work_guard(io_)),
      thread_([this] { io_.run(); }) {}

Expected<std::unique_ptr<SandboxFusionClient>> SandboxFusionClient::start(const config::ToolConfig& tool,
                                                                          SandboxFusionClientOptions options) {
  auto endpoint = parse_http_url(tool.sandbox_fusion.url);
  if (!endpoint) return endpoint.status();
  // Resolved once, here, so that a bad host name fails at start and no request waits on DNS.
  asio::io_context resolve_io;
  asio::ip::tcp::resolver resolver(resolve_io);
  error_code ec;
  const auto results = resolver.resolve(endpoint->host, endpoint->port, ec);
  if (ec || results.empty()) {
    return Status(StatusCode::kUnavailable, "tool.sandbox_fusion.url '" + tool.sandbox_fusion.url +
                                                "': cannot resolve host '" + endpoint->host + "': " + ec.message());
  }
  std::vector<asio::ip::tcp::endpoint> addresses;
  for (const auto& entry : results) addresses.push_back(entry.endpoint());
  return std::unique_ptr<SandboxFusionClient>(
      new SandboxFusionClient(tool, std::move(endpoint).value(), std::move(addresses), options));
}

SandboxFusionClient::~SandboxFusionClient() {
  std::promise<void> closed;
  asio::post(io_, [this, &closed] {
    shut_down();
    closed.set_value();
  });
  closed.get_future().wait();
  // In-flight calls see their connection or backoff aborted, report, and end; then run() returns.
  work_.reset();
  if (thread_.joinable()) thread_.join();
}

void SandboxFusionClient::shut_down() {
  stopping_ = true;
  std::deque<Call> queue = std::move(queue_);
  queue_.clear();
  queue_depth_ = 0;
  for (auto& call : queue) call.done(sandbox_error("sandbox_fusion client: shutting down"));
  idle_.clear();
  for (auto* stream : busy_) stream->close();
  for (auto* timer : backoffs_) timer->cancel();
}

void SandboxFusionClient::submit(std::string code, Done done) {
  asio::post(io_, [this, code = std::move(code), done = std::move(done)]() mutable {
    if (stopping_) return done(sandbox_error("sandbox_fusion client: shutting down"));
    if (queue_.size() >= static_cast<size_t>(tool_.max_queue)) {
      return done(sandbox_error("sandbox_fusion client: queue full (tool.max_queue = " +
                                std::to_string(tool_.max_queue) + "); try again later"));
    }
    queue_.push_back({std::move(code), std::move(done), Clock::now()});
    queue_depth_ = queue_.size();
    start_next();
  });
}

ExecutionResult SandboxFusionClient::run(std::string code) {
  std::promise<ExecutionResult> promise;
  auto future = promise.get_future();
  submit(std::move(code), [&promise](ExecutionResult result) { promise.set_value(std::move(result)); });
  return future.get();
}

void SandboxFusionClient::start_next() {
  while (!stopping_ && !queue_.empty() && in_flight_ < tool_.sandbox_fusion.max_concurrency) {
    Call call = std::move(queue_.front());
    queue_.pop_front();
    queue_depth_ = queue_.size();
    ++in_flight_;
    asio::co_spawn(io_, perform(std::move(call)), asio::detached);
  }
}

asio::awaitable<void> SandboxFusionClient::perform(Call call) {
  const auto started = Clock::now();
  const std::string url = endpoint_.url() + "/run_code";
  const int max_retries = tool_.sandbox_fusion.max_retries;
  ExecutionResult result;
  try {
    const std::string body = run_code_request_body(call.code, tool_);
    for (int attempt = 0;; ++attempt) {
      const Reply reply = co_await exchange(body);
      if (stopping_) {
        result = sandbox_error("sandbox_fusion client: shutting down");
        break;
      }
      std::string problem;
      bool retryable = false;
      if (reply.timed_out) {
        // Not retried: the code may well be running still, and a retry would double the wait.
        const auto deadline = std::chrono::milliseconds(tool_.timeout_ms) + options_.deadline_margin;
        result = sandbox_error("POST " + url + ": no answer within " + std::to_string(deadline.count()) +
                               " ms (tool.timeout_ms + margin); the server is overloaded or stuck");
        break;
      }
      if (reply.error) {
        problem = reply.error.message();
        retryable = true;
      } else if (reply.http_status == 200) {
        auto parsed = parse_run_code_response(reply.body, tool_.max_output_bytes);
        if (parsed) {
          result = std::move(parsed).value();
          if (result.status == ExecutionStatus::kSandboxError) result.stderr_text = url + ": " + result.stderr_text;
        } else {
          result = sandbox_error("POST " + url + ": malformed answer (" + parsed.status().message() +
                                 "); body starts with '" + body_excerpt(reply.body) + "'");
        }
        break;
      } else {
        problem = "HTTP status " + std::to_string(reply.http_status) + ", body starts with '" +
                  body_excerpt(reply.body) + "'";
        retryable = reply.http_status >= 500;
      }
      if (!retryable || attempt >= max_retries) {
        result = sandbox_error("POST " + url + ": " + problem +
                               (attempt > 0 ? " (gave up after " + std::to_string(attempt + 1) + " attempts)" : ""));
        break;
      }
      TORL_LOG(kDebug) << "sandbox_fusion: " << url << ": " << problem << "; retry " << attempt + 1 << " of " << max_retries;
      asio::steady_timer backoff(io_, options_.first_backoff * (1 << std::min(attempt, 10)));
      backoffs_.insert(&backoff);
      error_code ec;
      co_await backoff.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      backoffs_.erase(&backoff);
    }
  } catch (const std::exception& e) {
    result = sandbox_error("POST " + url + ": " + e.what());
  }
  result.queue_ms = std::chrono::duration<double, std::milli>(started - call.queued_at).count();
  result.wall_ms = elapsed_ms(started);
  call.done(std::move(result));
  --in_flight_;
  start_next();
}

asio::awaitable<SandboxFusionClient::Reply> SandboxFusionClient::exchange(const std::string& body) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(tool_.timeout_ms) + options_.deadline_margin;
  // A kept-alive connection may have been closed by the server meanwhile; if it fails, one fresh
  // connection is tried at once (not counted as a retry).
  for (bool may_reuse = true;; may_reuse = false) {
    std::unique_ptr<beast::tcp_stream> stream;
    const bool reused = may_reuse && !idle_.empty();
    if (reused) {
      stream = std::move(idle_.back());
      idle_.pop_back();
    } else {
      stream = std::make_unique<beast::tcp_stream>(io_);
    }
    stream->expires_at(deadline);
    busy_.insert(stream.get());
    Reply reply;
    if (!reused) {
      co_await stream->async_connect(addresses_, asio::redirect_error(asio::use_awaitable, reply.error));
    }
    bool keep_alive = false;
    if (!reply.error) keep_alive = co_await exchange_on(*stream, body, reply);
    busy_.erase(stream.get());
    reply.timed_out = reply.error == beast::error::timeout;
    if (!reply.error) {
      if (keep_alive && !stopping_) {
        stream->expires_never();
        idle_.push_back(std::move(stream));
      }
      co_return reply;
    }
    if (!reused || reply.timed_out || stopping_) co_return reply;
  }
}

asio::awaitable<bool> SandboxFusionClient::exchange_on(beast::tcp_stream& stream, const std::string& body,
                                                      Reply& reply) {
  http::request<http::string_body> request{http::verb::post, endpoint_.path_prefix + "/run_code", 11};
  request.set(http::field::host, endpoint_.host + ":" + endpoint_.port);
  request.set(http::field::content_type, "application/json");
  request.keep_alive(true);
  request.body() = body;
  request.prepare_payload();
  co_await http::async_write(stream, request, asio::redirect_error(asio::use_awaitable, reply.error));
  if (reply.error) co_return false;

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxResponseBytes);
  co_await http::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, reply.error));
  if (reply.error) co_return false;
  auto response = parser.release();
  reply.http_status = response.result_int();
  reply.body = std::move(response.body());
  co_return response.keep_alive();
}

}  // namespace torl::sandbox
