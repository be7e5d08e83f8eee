#include "sandbox/sandbox_fusion_server.hpp"

#include <future>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "common/json.hpp"
#include "common/log.hpp"
#include "sandbox/sandbox_fusion_protocol.hpp"

namespace torl::sandbox {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using boost::system::error_code;
using tcp = asio::ip::tcp;

namespace {

constexpr uint64_t kMaxRequestBytes = 64ull << 20;
// A keep-alive connection with no request for this long is closed; so is one that will not take
// its answer within kWriteTimeout.
constexpr auto kIdleTimeout = std::chrono::seconds(120);
constexpr auto kWriteTimeout = std::chrono::seconds(30);

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

void set_body(Response& response, http::status status, std::string content_type, std::string body) {
  response.result(status);
  response.set(http::field::content_type, content_type);
  response.body() = std::move(body);
}

void set_json_error(Response& response, http::status status, const std::string& message) {
  set_body(response, status, "application/json",
           nlohmann::json{{"error", message}}.dump(-1, ' ', false, Json::error_handler_t::replace));
}

}  // namespace

SandboxFusionServer::SandboxFusionServer(CodeRunner& runner)
    : runner_(runner), work_(asio::make_work_guard(io_)), acceptor_(io_), thread_([this] { io_.run(); }) {}

Expected<std::unique_ptr<SandboxFusionServer>> SandboxFusionServer::start(const std::string& listen,
                                                                          CodeRunner& runner) {
  std::unique_ptr<SandboxFusionServer> server(new SandboxFusionServer(runner));
  const Status listening = server->listen(listen);
  if (!listening.ok()) return listening.with_context("torl sandbox serve --listen " + listen);
  asio::co_spawn(server->io_, server->accept_loop(), asio::detached);
  return server;
}

Status SandboxFusionServer::listen(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return invalid_argument("expected HOST:PORT, e.g. 127.0.0.1:8080");
  std::string host = address.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string port_text = address.substr(colon + 1);
  char* end = nullptr;
  const long port = std::strtol(port_text.c_str(), &end, 10);
  if (port_text.empty() || *end != '\0' || port < 0 || port > 65535) {
    return invalid_argument("the port must be a number in 0..65535 (got '" + port_text + "')");
  }
  error_code ec;
  const auto ip = asio::ip::make_address(host, ec);
  if (ec) return invalid_argument("'" + host + "' is not an IP address: " + ec.message());
  const tcp::endpoint endpoint(ip, static_cast<uint16_t>(port));
  // Before the accept loop starts, the acceptor is used by this thread only.
  if (acceptor_.open(endpoint.protocol(), ec); ec) return io_error("cannot open a socket: " + ec.message());
  if (acceptor_.set_option(asio::socket_base::reuse_address(true), ec); ec) {
    return io_error("cannot set SO_REUSEADDR: " + ec.message());
  }
  if (acceptor_.bind(endpoint, ec); ec) return io_error("cannot bind: " + ec.message());
  if (acceptor_.listen(asio::socket_base::max_listen_connections, ec); ec) {
    return io_error("cannot listen: " + ec.message());
  }
  endpoint_ = acceptor_.local_endpoint(ec);
  if (ec) return io_error("cannot read the bound address: " + ec.message());
  return Status();
}

SandboxFusionServer::~SandboxFusionServer() {
  std::promise<void> closed;
  asio::post(io_, [this, &closed] {
    stopping_ = true;
    error_code ignored;
    acceptor_.close(ignored);
    for (auto* connection : connections_) connection->close();
    closed.set_value();
  });
  closed.get_future().wait();
  // From here no snippet is handed to the runner; wait for those it has, whose callbacks post here.
  {
    std::unique_lock lock(running_mutex_);
    running_done_.wait(lock, [this] { return running_ == 0; });
  }
  work_.reset();
  if (thread_.joinable()) thread_.join();
}

std::string SandboxFusionServer::address() const {
  const auto ip = endpoint_.address();
  const std::string host = ip.is_v6() ? "[" + ip.to_string() + "]" : ip.to_string();
  return host + ":" + std::to_string(endpoint_.port());
}

asio::awaitable<void> SandboxFusionServer::accept_loop() {
  while (!stopping_) {
    error_code ec;
    tcp::socket socket = co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (stopping_) break;
    if (ec) {
      TORL_LOG(kWarn) << "sandbox serve: accept failed: " << ec.message();
      continue;
    }
    asio::co_spawn(io_, serve(beast::tcp_stream(std::move(socket))), asio::detached);
  }
}

asio::awaitable<void> SandboxFusionServer::serve(beast::tcp_stream stream) {
  connections_.insert(&stream);
  try {
    beast::flat_buffer buffer;
    while (!stopping_) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(kMaxRequestBytes);
      stream.expires_after(kIdleTimeout);
      error_code ec;
      co_await http::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;  // the client closed the connection, went idle, or sent something that is not HTTP
      const Request request = parser.release();
      Response response{http::status::ok, request.version()};
      co_await answer(request, response);
      response.keep_alive(request.keep_alive());
      response.prepare_payload();
      stream.expires_after(kWriteTimeout);
      co_await http::async_write(stream, response, asio::redirect_error(asio::use_awaitable, ec));
      if (ec || !response.keep_alive()) break;
    }
  } catch (const std::exception& e) {
    TORL_LOG(kError) << "sandbox serve: connection dropped: " << e.what();
  }
  connections_.erase(&stream);
  error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
}

template <class RequestT, class ResponseT>
asio::awaitable<void> SandboxFusionServer::answer(const RequestT& request, ResponseT& response) {
  std::string_view target(request.target().data(), request.target().size());
  target = target.substr(0, target.find('?'));
  if (target == "/v1/ping") {
    set_body(response, http::status::ok, "text/plain", "pong");
    co_return;
  }
  if (target != "/run_code") {
    set_json_error(response, http::status::not_found,
                   "no such path '" + std::string(target) + "'; this server answers POST /run_code and GET /v1/ping");
    co_return;
  }
  if (request.method() != http::verb::post) {
    set_json_error(response, http::status::method_not_allowed, "/run_code takes POST");
    co_return;
  }
  auto run = parse_run_code_request(request.body());
  if (!run) {
    set_json_error(response, http::status::bad_request, run.status().message());
    co_return;
  }
  if (run->language != "python") {
    set_body(response, http::status::ok, "application/json",
             sandbox_error_response_body("unsupported language '" + run->language +
                                         "'; this server runs python only"));
    co_return;
  }
  const ExecutionResult result = co_await execute(std::move(run->code));
  set_body(response, http::status::ok, "application/json", run_code_response_body(result));
}

asio::awaitable<ExecutionResult> SandboxFusionServer::execute(std::string code) {
  if (stopping_) co_return sandbox_error("sandbox serve: shutting down");
  {
    std::lock_guard lock(running_mutex_);
    ++running_;
  }
  auto initiate = [this](auto handler, std::string code) {
    // The handler resumes this coroutine; it must run on the io thread, so the callback posts it.
    auto shared = std::make_shared<decltype(handler)>(std::move(handler));
    runner_.submit(std::move(code), [this, shared](ExecutionResult result) {
      asio::post(io_, [shared, result = std::move(result)]() mutable { (*shared)(std::move(result)); });
      std::lock_guard lock(running_mutex_);
      if (--running_ == 0) running_done_.notify_all();
    });
  };
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(ExecutionResult)>(
      initiate, asio::use_awaitable, std::move(code));
}

}  // namespace torl::sandbox
