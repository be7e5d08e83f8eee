// HttpServer: answers now or later from another thread, never leaves a client hanging, waits for
// the answers it owes when destroyed, and says why it cannot listen.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "common/http_server.hpp"
#include "tests/http_exchange.hpp"

namespace torl {
namespace {

using testing::http_exchange;
namespace http = boost::beast::http;

// A plain connection to 127.0.0.1:port.
int connect_to(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  return fd;
}

// What arrives on `fd` until the server closes (or resets) it; nothing if it is still open after 30 s,
// so that a server that never closes it fails the test instead of hanging it. Closes `fd`.
std::optional<std::string> read_until_closed(int fd) {
  timeval limit{30, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  std::string text;
  char chunk[4096];
  for (;;) {
    const ssize_t n = recv(fd, chunk, sizeof chunk, 0);
    if (n > 0) {
      text.append(chunk, static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      const bool closed = n == 0 || errno == ECONNRESET;
      close(fd);
      if (!closed) return std::nullopt;
      return text;
    }
  }
}

}  // namespace

TEST_SUITE("common") {

TEST_CASE("http server: the handler sees method, path without query and body, and its answer is sent") {
  std::vector<HttpRequest> seen;  // on the server thread only until the exchange returns
  auto server = HttpServer::start("127.0.0.1:0", [&](HttpRequest request, HttpServer::Respond respond) {
    seen.push_back(request);
    respond({201, "application/json", "{\"echo\":\"" + request.body + "\"}"});
  });
  REQUIRE_MESSAGE(server.ok(), server.status().message());
  const auto [status, body] = http_exchange((*server)->port(), http::verb::post, "/things?x=1", "hello");
  CHECK(status == 201);
  CHECK(body == "{\"echo\":\"hello\"}");
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].method == "POST");
  CHECK(seen[0].path == "/things");
  CHECK((*server)->address() == "127.0.0.1:" + std::to_string((*server)->port()));
}

TEST_CASE("http server: an answer given later from another thread reaches the client") {
  std::vector<std::thread> workers;
  auto server = HttpServer::start("127.0.0.1:0", [&](HttpRequest request, HttpServer::Respond respond) {
    workers.emplace_back([respond, path = request.path] { respond({200, "text/plain", "late " + path}); });
  });
  REQUIRE(server.ok());
  CHECK(http_exchange((*server)->port(), http::verb::get, "/a").second == "late /a");
  CHECK(http_exchange((*server)->port(), http::verb::get, "/b").second == "late /b");
  for (auto& worker : workers) worker.join();
}

TEST_CASE("http server: a dropped answer is a 500 and a throwing handler is a 500 with its message") {
  auto server = HttpServer::start("127.0.0.1:0", [](HttpRequest request, HttpServer::Respond) {
    if (request.path == "/throw") throw std::runtime_error("handler broke");
  });
  REQUIRE(server.ok());
  const auto dropped = http_exchange((*server)->port(), http::verb::get, "/drop");
  CHECK(dropped.first == 500);
  CHECK(dropped.second.find("no answer") != std::string::npos);
  const auto thrown = http_exchange((*server)->port(), http::verb::get, "/throw");
  CHECK(thrown.first == 500);
  CHECK(thrown.second.find("handler broke") != std::string::npos);
}

TEST_CASE("http server: destroying it waits for an answer still owed, which still reaches its client") {
  std::promise<HttpServer::Respond> owed;
  auto server = HttpServer::start("127.0.0.1:0", [&](HttpRequest, HttpServer::Respond respond) {
    owed.set_value(std::move(respond));
  });
  REQUIRE(server.ok());
  const uint16_t port = (*server)->port();
  const int asking = connect_to(port);
  const std::string request = "GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  REQUIRE(send(asking, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size()));
  auto reply = std::async(std::launch::async, [asking] { return read_until_closed(asking); });
  HttpServer::Respond respond = owed.get_future().get();  // the server owes the client an answer now
  const int idle = connect_to(port);  // sends nothing: the destructor closes it as it begins
  std::atomic<bool> responded{false};
  bool responded_before_return = false;
  std::thread stopper([&] {
    server->reset();
    responded_before_return = responded;
  });
  // Answer from this thread once the destructor has begun: it must wait for the answer, and deliver it.
  CHECK(read_until_closed(idle).has_value());
  // Only so that a destructor that does not wait would be seen returning first: a correct server
  // passes whatever this delay is.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  responded = true;
  respond({200, "text/plain", "done"});
  stopper.join();
  CHECK(responded_before_return);
  const std::optional<std::string> answer = reply.get();
  REQUIRE(answer.has_value());
  CHECK(answer->rfind("HTTP/1.1 200 ", 0) == 0);
  CHECK(answer->ends_with("\r\n\r\ndone"));
}

TEST_CASE("http server: a bad address or a port in use is an error naming it") {
  auto no_port = HttpServer::start("127.0.0.1", [](HttpRequest, HttpServer::Respond) {});
  REQUIRE_FALSE(no_port.ok());
  CHECK(no_port.status().message().find("HOST:PORT") != std::string::npos);
  auto bad_host = HttpServer::start("localhost:0", [](HttpRequest, HttpServer::Respond) {});
  REQUIRE_FALSE(bad_host.ok());
  CHECK(bad_host.status().message().find("'localhost' is not an IP address") != std::string::npos);
  auto first = HttpServer::start("127.0.0.1:0", [](HttpRequest, HttpServer::Respond) {});
  REQUIRE(first.ok());
  const std::string taken = (*first)->address();
  auto second = HttpServer::start(taken, [](HttpRequest, HttpServer::Respond) {});
  REQUIRE_FALSE(second.ok());
  CHECK(second.status().message().find(taken) != std::string::npos);
}

}  // TEST_SUITE
}  // namespace torl
