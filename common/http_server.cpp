#include "common/http_server.hpp"

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <future>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "common/asio.hpp"
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include "common/log.hpp"

namespace torl {

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

}  // namespace

struct HttpServer::Impl {
  explicit Impl(Handler h) : handler(std::move(h)), work(asio::make_work_guard(io)), acceptor(io) {}

  Status listen(const std::string& address);
  asio::awaitable<void> accept_loop();
  asio::awaitable<void> serve(beast::tcp_stream stream);
  asio::awaitable<HttpResponse> answer(HttpRequest request);

  Handler handler;
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  tcp::acceptor acceptor;
  tcp::endpoint endpoint;  // what acceptor is bound to; set before serving

  // Touched only on the io thread.
  std::set<beast::tcp_stream*> reading;  // connections waiting for a request: the destructor closes them
  bool stopping = false;

  // Requests handed to the handler and not answered yet.
  std::mutex owed_mutex;
  std::condition_variable owed_done;
  int owed = 0;  // guarded by owed_mutex

  std::thread thread;  // runs io; started last, once everything it uses exists
};

Status HttpServer::Impl::listen(const std::string& address) {
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
  const tcp::endpoint wanted(ip, static_cast<uint16_t>(port));
  // Before the io thread starts, the acceptor is used by this thread only.
  if (acceptor.open(wanted.protocol(), ec); ec) return io_error("cannot open a socket: " + ec.message());
  if (acceptor.set_option(asio::socket_base::reuse_address(true), ec); ec) {
    return io_error("cannot set SO_REUSEADDR: " + ec.message());
  }
  if (acceptor.bind(wanted, ec); ec) return io_error("cannot bind " + address + ": " + ec.message());
  if (acceptor.listen(asio::socket_base::max_listen_connections, ec); ec) {
    return io_error("cannot listen on " + address + ": " + ec.message());
  }
  endpoint = acceptor.local_endpoint(ec);
  if (ec) return io_error("cannot read the bound address: " + ec.message());
  return Status();
}

asio::awaitable<void> HttpServer::Impl::accept_loop() {
  while (!stopping) {
    error_code ec;
    tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (stopping) break;
    if (ec) {  // e.g. out of file descriptors: wait a little rather than spin
      TORL_LOG(kWarn) << "http server: accept failed: " << ec.message();
      asio::steady_timer pause(io, std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    asio::co_spawn(io, serve(beast::tcp_stream(std::move(socket))), asio::detached);
  }
}

// A connection that is answering a request is not closed by the destructor: it sends its answer
// (which may come after the destructor started), then closes.
asio::awaitable<void> HttpServer::Impl::serve(beast::tcp_stream stream) {
  try {
    beast::flat_buffer buffer;
    while (!stopping) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(kMaxRequestBytes);
      stream.expires_after(kIdleTimeout);
      error_code ec;
      reading.insert(&stream);
      co_await http::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
      reading.erase(&stream);
      // the client closed the connection, went idle or sent something that is not HTTP; or the server
      // is stopping, and the handler must not get requests after the destructor stopped waiting
      if (ec || stopping) break;
      http::request<http::string_body> request = parser.release();
      std::string_view target(request.target().data(), request.target().size());
      HttpRequest asked{std::string(request.method_string()), std::string(target.substr(0, target.find('?'))),
                        std::move(request.body())};
      const HttpResponse answered = co_await answer(std::move(asked));
      http::response<http::string_body> response{static_cast<http::status>(answered.status), request.version()};
      response.set(http::field::content_type, answered.content_type);
      response.body() = answered.body;
      response.keep_alive(request.keep_alive() && !stopping);
      response.prepare_payload();
      stream.expires_after(kWriteTimeout);
      co_await http::async_write(stream, response, asio::redirect_error(asio::use_awaitable, ec));
      if (ec || !response.keep_alive()) break;
    }
  } catch (const std::exception& e) {
    TORL_LOG(kError) << "http server: connection dropped: " << e.what();
  }
  reading.erase(&stream);
  error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
}

// Hands the request to the handler and resumes, on the io thread, with its answer.
asio::awaitable<HttpResponse> HttpServer::Impl::answer(HttpRequest request) {
  auto initiate = [this](auto resume, HttpRequest request) {
    using Resume = decltype(resume);
    // The one answer to this request: the first Respond call, or 500 when every copy is dropped.
    struct Owed {
      Impl* server;
      std::optional<Resume> resume;
      std::atomic<bool> answered{false};
      void deliver(HttpResponse response) {
        if (answered.exchange(true)) return;
        asio::post(server->io, [resume = std::move(*resume), response = std::move(response)]() mutable {
          resume(std::move(response));
        });
        std::lock_guard lock(server->owed_mutex);
        if (--server->owed == 0) server->owed_done.notify_all();
      }
      ~Owed() { deliver({500, "text/plain; charset=utf-8", "the server gave no answer\n"}); }
    };
    {
      std::lock_guard lock(owed_mutex);
      ++owed;
    }
    auto owed_answer = std::make_shared<Owed>();
    owed_answer->server = this;
    owed_answer->resume.emplace(std::move(resume));
    Respond respond = [owed_answer](HttpResponse response) { owed_answer->deliver(std::move(response)); };
    try {
      handler(std::move(request), std::move(respond));
    } catch (const std::exception& e) {
      owed_answer->deliver({500, "text/plain; charset=utf-8", std::string("error: ") + e.what() + "\n"});
    }
  };
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(HttpResponse)>(
      initiate, asio::use_awaitable, std::move(request));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Expected<std::unique_ptr<HttpServer>> HttpServer::start(const std::string& listen, Handler handler) {
  auto impl = std::make_unique<Impl>(std::move(handler));
  if (Status listening = impl->listen(listen); !listening.ok()) return listening;
  asio::co_spawn(impl->io, impl->accept_loop(), asio::detached);
  Impl& i = *impl;
  i.thread = std::thread([&i] { i.io.run(); });
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::~HttpServer() {
  Impl& i = *impl_;
  std::promise<void> closed;
  asio::post(i.io, [&i, &closed] {
    i.stopping = true;
    error_code ignored;
    i.acceptor.close(ignored);
    for (auto* connection : i.reading) connection->close();
    closed.set_value();
  });
  closed.get_future().wait();
  // No new request reaches the handler now; wait for the answers still owed, which post here. Then
  // the io thread runs until they are written (or their write times out).
  {
    std::unique_lock lock(i.owed_mutex);
    i.owed_done.wait(lock, [&i] { return i.owed == 0; });
  }
  i.work.reset();
  if (i.thread.joinable()) i.thread.join();
}

std::string HttpServer::address() const {
  const auto ip = impl_->endpoint.address();
  const std::string host = ip.is_v6() ? "[" + ip.to_string() + "]" : ip.to_string();
  return host + ":" + std::to_string(impl_->endpoint.port());
}

uint16_t HttpServer::port() const { return impl_->endpoint.port(); }

}  // namespace torl
