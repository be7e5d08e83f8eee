// HttpServer: answers now or later from another thread, never leaves a client hanging, waits for
// the answers it owes when destroyed, and says why it cannot listen.
#include <doctest/doctest.h>

#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "common/http_server.hpp"
#include "tests/http_exchange.hpp"

namespace torl {
namespace {

using testing::http_exchange;
namespace http = boost::beast::http;

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

TEST_CASE("http server: destroying it waits for an answer still owed") {
  std::promise<HttpServer::Respond> owed;
  auto server = HttpServer::start("127.0.0.1:0", [&](HttpRequest, HttpServer::Respond respond) {
    owed.set_value(std::move(respond));
  });
  REQUIRE(server.ok());
  const uint16_t port = (*server)->port();
  auto client = std::async(std::launch::async, [port] {
    try {
      return http_exchange(port, http::verb::get, "/slow").first;
    } catch (const std::exception&) {
      return 0u;  // the connection closed before the answer: allowed while the server stops
    }
  });
  HttpServer::Respond respond = owed.get_future().get();
  // The destructor cannot return while the answer is owed; answering lets it.
  std::atomic<bool> answered{false};
  bool answered_before_return = false;
  std::thread stopper([&] {
    server->reset();
    answered_before_return = answered.load();
  });
  answered = true;
  respond({200, "text/plain", "done"});
  stopper.join();
  CHECK(answered_before_return);
  const unsigned status = client.get();
  CHECK((status == 200 || status == 0));  // the answer, or a connection closed by the stop; never a 500
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
