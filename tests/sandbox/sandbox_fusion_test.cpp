// SandboxFusion compatibility: the wire format, our client against a scripted stand-in server
// (timeouts, 5xx, slow answers, refused connections, malformed JSON), and our client against
// `torl sandbox serve` backed by the real pool.
#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "common/asio.hpp"
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "common/json.hpp"
#include "config/config.hpp"
#include "sandbox/executor.hpp"
#include "sandbox/sandbox_fusion_client.hpp"
#include "sandbox/sandbox_fusion_protocol.hpp"
#include "sandbox/sandbox_fusion_server.hpp"
#include "tests/http_exchange.hpp"

namespace torl::sandbox {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using testing::http_exchange;

// ---- a stand-in SandboxFusion server that answers from a script ----

struct ScriptedReply {
  unsigned http_status = 200;
  std::string body;
  int delay_ms = 0;   // the server is this slow to answer
  bool hang = false;  // answers only after release(): never, without it
};

class ScriptedServer {
 public:
  // Answers the i-th request with replies[i]; the last reply repeats.
  explicit ScriptedServer(std::vector<ScriptedReply> replies)
      : replies_(std::move(replies)), acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    asio::co_spawn(io_, accept_loop(), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~ScriptedServer() {
    io_.stop();
    thread_.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()); }
  int requests() const { return requests_; }
  int connections() const { return connections_; }
  int max_in_flight() const { return max_in_flight_; }
  std::string first_request_body() const {
    std::lock_guard lock(mutex_);
    return first_request_body_;
  }

  // Waits until at least `count` requests are held by `hang` replies; false if that does not happen
  // within 30 s, so that a broken client fails the test instead of hanging it.
  bool wait_for_held(int count) {
    std::unique_lock lock(mutex_);
    return held_changed_.wait_for(lock, std::chrono::seconds(30), [&] { return held_ >= count; });
  }

  // Answers the requests held now, and holds no more.
  void release() {
    asio::post(io_, [this] {
      released_ = true;
      for (auto* timer : holding_) timer->cancel();
    });
  }

 private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      tcp::socket socket = co_await acceptor_.async_accept(asio::use_awaitable);
      ++connections_;
      asio::co_spawn(io_, serve(std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> serve(tcp::socket socket) {
    beast::flat_buffer buffer;
    for (;;) {
      http::request<http::string_body> request;
      boost::system::error_code ec;
      co_await http::async_read(socket, buffer, request, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
      const int index = requests_++;
      {
        std::lock_guard lock(mutex_);
        if (index == 0) first_request_body_ = request.body();
      }
      const ScriptedReply& reply = replies_[std::min<size_t>(static_cast<size_t>(index), replies_.size() - 1)];
      max_in_flight_ = std::max(max_in_flight_.load(), ++in_flight_);
      asio::steady_timer wait(io_);
      const bool hold = reply.hang && !released_;
      if (hold) {
        wait.expires_at(asio::steady_timer::time_point::max());
        holding_.insert(&wait);
        count_held(+1);
      } else {
        wait.expires_after(std::chrono::milliseconds(reply.delay_ms));
      }
      co_await wait.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (hold) {
        holding_.erase(&wait);
        count_held(-1);
      }
      --in_flight_;
      http::response<http::string_body> response{static_cast<http::status>(reply.http_status), 11};
      response.set(http::field::content_type, "application/json");
      response.body() = reply.body;
      response.keep_alive(true);
      response.prepare_payload();
      co_await http::async_write(socket, response, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
    }
  }

  void count_held(int change) {
    std::lock_guard lock(mutex_);
    held_ += change;
    held_changed_.notify_all();
  }

  const std::vector<ScriptedReply> replies_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::atomic<int> requests_{0}, connections_{0}, in_flight_{0}, max_in_flight_{0};
  std::set<asio::steady_timer*> holding_;  // on the io thread only: the waits of held requests
  bool released_ = false;                  // on the io thread only
  mutable std::mutex mutex_;
  std::condition_variable held_changed_;
  std::string first_request_body_;  // guarded by mutex_
  int held_ = 0;                    // guarded by mutex_
  std::thread thread_;
};

const std::string kSuccess =
    R"({"status":"Success","message":"","run_result":{"status":"Finished","return_code":0,"stdout":"2\n","stderr":"","execution_time":0.01}})";

config::ToolConfig client_config(const std::string& url) {
  config::ToolConfig tool;
  tool.backend = config::ToolBackend::kSandboxFusion;
  tool.sandbox_fusion.url = url;
  tool.sandbox_fusion.max_retries = 2;
  tool.sandbox_fusion.max_concurrency = 4;
  tool.timeout_ms = 1000;
  tool.memory_mb = 512;
  return tool;
}

// Short backoffs, so that retries take milliseconds, and a deadline that no loaded machine comes near
// (the test of the deadline itself sets its own).
constexpr SandboxFusionClientOptions kTestOptions{std::chrono::seconds(60), std::chrono::milliseconds(1)};

std::unique_ptr<SandboxFusionClient> start_client(const config::ToolConfig& tool,
                                                  SandboxFusionClientOptions options = kTestOptions) {
  auto client = SandboxFusionClient::start(tool, options);
  REQUIRE_MESSAGE(client.ok(), client.status().message());
  return std::move(client).value();
}

// A runner that answers every snippet at once with status ok and the code as stdout.
class EchoRunner : public CodeRunner {
 public:
  void submit(std::string code, Done done) override {
    ++calls;
    ExecutionResult result;
    result.status = ExecutionStatus::kOk;
    result.exit_code = 0;
    result.stdout_text = std::move(code);
    done(std::move(result));
  }
  std::atomic<int> calls = 0;
};

// A runner that holds every snippet until release() answers them all. It takes any RunRequest (the
// server passes on the limits our client sends) and holds its code.
class HeldRunner : public CodeRunner {
 public:
  void submit(RunRequest request, Done done) override { submit(std::move(request.code), std::move(done)); }
  void submit(std::string code, Done done) override {
    std::lock_guard lock(mutex_);
    held_.emplace_back(std::move(code), std::move(done));
    arrived_.notify_all();
  }
  // Whether `count` snippets arrived within 60 s: a server that drops them fails the test, not hangs it.
  bool wait_for(size_t count) {
    std::unique_lock lock(mutex_);
    return arrived_.wait_for(lock, std::chrono::seconds(60), [&] { return held_.size() >= count; });
  }
  void release() {
    std::vector<std::pair<std::string, Done>> held;
    {
      std::lock_guard lock(mutex_);
      held.swap(held_);
    }
    for (auto& [code, done] : held) {
      ExecutionResult result;
      result.status = ExecutionStatus::kOk;
      result.exit_code = 0;
      result.stdout_text = code;
      done(std::move(result));
    }
  }

 private:
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::vector<std::pair<std::string, Done>> held_;
};

// One blocking HTTP exchange with the server on `port`: (status, body).
// A loopback port that nothing listens on.
uint16_t closed_port() {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return acceptor.local_endpoint().port();
}

}  // namespace

TEST_SUITE("sandbox") {

// ---- the wire format ----

TEST_CASE("SandboxFusion statuses map to ours with the output the model sees") {
  auto ok = parse_run_code_response(kSuccess, 4096);
  REQUIRE(ok.ok());
  CHECK(ok->status == ExecutionStatus::kOk);
  CHECK(ok->stdout_text == "2\n");
  CHECK(ok->wall_ms == doctest::Approx(10.0));

  auto error = parse_run_code_response(
      R"({"status":"Failed","run_result":{"status":"Finished","return_code":1,"stdout":"","stderr":"ZeroDivisionError"}})", 4096);
  REQUIRE(error.ok());
  CHECK(error->status == ExecutionStatus::kError);
  CHECK(error->exit_code == 1);
  CHECK(error->stderr_text == "ZeroDivisionError");

  auto timeout = parse_run_code_response(
      R"({"status":"Failed","run_result":{"status":"TimeLimitExceeded","return_code":null,"stdout":"partial","stderr":null}})", 4096);
  REQUIRE(timeout.ok());
  CHECK(timeout->status == ExecutionStatus::kTimeout);
  CHECK(timeout->stdout_text == "partial");

  auto killed = parse_run_code_response(
      R"({"status":"Failed","run_result":{"status":"Finished","return_code":-9,"stdout":"","stderr":""}})", 4096);
  REQUIRE(killed.ok());
  CHECK(killed->status == ExecutionStatus::kKilled);
  CHECK(killed->signal == 9);

  auto sandbox = parse_run_code_response(R"({"status":"SandboxError","message":"no runner available"})", 4096);
  REQUIRE(sandbox.ok());
  CHECK(sandbox->status == ExecutionStatus::kSandboxError);
  CHECK(sandbox->stderr_text.find("no runner available") != std::string::npos);
}

TEST_CASE("output longer than tool.max_output_bytes is cut and marked truncated") {
  auto result = parse_run_code_response(kSuccess, 1);
  REQUIRE(result.ok());
  CHECK(result->stdout_text == "2");
  CHECK(result->truncated);
}

TEST_CASE("a run_code answer that is not SandboxFusion JSON is an error saying what is wrong") {
  auto not_json = parse_run_code_response("<html>502</html>", 4096);
  CHECK_FALSE(not_json.ok());
  auto no_status = parse_run_code_response(R"({"run_result":{}})", 4096);
  REQUIRE_FALSE(no_status.ok());
  CHECK(no_status.status().message().find("'status'") != std::string::npos);
  auto odd_status = parse_run_code_response(R"({"status":"Maybe"})", 4096);
  REQUIRE_FALSE(odd_status.ok());
  CHECK(odd_status.status().message().find("Maybe") != std::string::npos);
}

TEST_CASE("every execution status survives a torl server and a torl client") {
  for (const auto& [status, name] : enum_names(ExecutionStatus{})) {
    CAPTURE(name);
    ExecutionResult sent;
    sent.status = status;
    sent.exit_code = status == ExecutionStatus::kOk ? 0 : (status == ExecutionStatus::kKilled ? -1 : 1);
    sent.signal = status == ExecutionStatus::kKilled ? 11 : 0;
    sent.stdout_text = "out";
    sent.stderr_text = "err";
    auto received = parse_run_code_response(run_code_response_body(sent), 4096);
    REQUIRE(received.ok());
    CHECK(received->status == status);
    if (status != ExecutionStatus::kSandboxError) CHECK(received->stdout_text == "out");
    CHECK(received->stderr_text.find("err") != std::string::npos);
  }
}

TEST_CASE("the run_code request carries the code and the tool limits in SandboxFusion's names") {
  config::ToolConfig tool;
  tool.timeout_ms = 2500;
  tool.memory_mb = 256;
  const ParsedRunCodeRequest parsed = parse_run_code_request(run_code_request_body("print(1)", tool));
  REQUIRE_MESSAGE(parsed.ok(), parsed.message());
  CHECK(parsed.request.code == "print(1)");
  CHECK(parsed.request.language == "python");
  REQUIRE(parsed.request.run_timeout_s);
  CHECK(*parsed.request.run_timeout_s == doctest::Approx(2.5));
  CHECK(parsed.request.memory_limit_mb == 256);
  const ParsedRunCodeRequest missing = parse_run_code_request(R"({"language":"python"})");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.message() == "body.code: Field required");
}

TEST_CASE("sandbox_fusion urls are parsed, and others are refused with the key name") {
  auto url = parse_http_url("http://sandbox.local:8080/api/");
  REQUIRE(url.ok());
  CHECK(url->host == "sandbox.local");
  CHECK(url->port == "8080");
  CHECK(url->path_prefix == "/api");
  auto no_port = parse_http_url("http://10.0.0.1");
  REQUIRE(no_port.ok());
  CHECK(no_port->port == "80");
  auto https = parse_http_url("https://x:1");
  REQUIRE_FALSE(https.ok());
  CHECK(https.status().message().find("tool.sandbox_fusion.url") != std::string::npos);
  CHECK_FALSE(parse_http_url("").ok());
}

// ---- the client against a scripted server ----

TEST_CASE("sandbox_fusion client: a success answer reaches the model with its stdout") {
  ScriptedServer server({{200, kSuccess}});
  auto client = start_client(client_config(server.url()));
  const ExecutionResult result = client->run("print(1 + 1)");
  CHECK(result.status == ExecutionStatus::kOk);
  CHECK(result.stdout_text == "2\n");
  const Json request = Json::parse(server.first_request_body());
  CHECK(request["code"] == "print(1 + 1)");
  CHECK(request["language"] == "python");
  CHECK(request["run_timeout"] == 1.0);
  CHECK(request["memory_limit_MB"] == 512);
}

TEST_CASE("sandbox_fusion client: a TimeLimitExceeded answer is a timeout the model sees") {
  ScriptedServer server({{200, R"({"status":"Failed","run_result":{"status":"TimeLimitExceeded","stdout":"","stderr":""}})"}});
  auto client = start_client(client_config(server.url()));
  CHECK(client->run("while True: pass").status == ExecutionStatus::kTimeout);
}

TEST_CASE("sandbox_fusion client: a 5xx answer is retried and the retry's answer is used") {
  ScriptedServer server({{503, "busy"}, {502, "bad gateway"}, {200, kSuccess}});
  auto client = start_client(client_config(server.url()));
  const ExecutionResult result = client->run("print(1 + 1)");
  CHECK(result.status == ExecutionStatus::kOk);
  CHECK(server.requests() == 3);
}

TEST_CASE("sandbox_fusion client: when retries run out the sandbox error names the url, status and body") {
  ScriptedServer server({{500, "internal trouble"}});
  auto tool = client_config(server.url());
  auto client = start_client(tool);
  const ExecutionResult result = client->run("print(1)");
  CHECK(result.status == ExecutionStatus::kSandboxError);
  CHECK(server.requests() == tool.sandbox_fusion.max_retries + 1);
  CHECK(result.stderr_text.find(server.url() + "/run_code") != std::string::npos);
  CHECK(result.stderr_text.find("HTTP status 500") != std::string::npos);
  CHECK(result.stderr_text.find("internal trouble") != std::string::npos);
}

TEST_CASE("sandbox_fusion client: a 4xx answer is not retried") {
  ScriptedServer server({{404, "not here"}});
  auto client = start_client(client_config(server.url()));
  const ExecutionResult result = client->run("print(1)");
  CHECK(result.status == ExecutionStatus::kSandboxError);
  CHECK(result.stderr_text.find("HTTP status 404") != std::string::npos);
  CHECK(server.requests() == 1);
}

TEST_CASE("sandbox_fusion client: an answer slower than the deadline is a sandbox error, not a hang") {
  ScriptedServer server({{200, kSuccess, 0, true}});
  auto tool = client_config(server.url());
  tool.timeout_ms = 200;
  auto client = start_client(tool, {std::chrono::milliseconds(300), std::chrono::milliseconds(1)});
  const ExecutionResult result = client->run("print(1)");
  CHECK(result.status == ExecutionStatus::kSandboxError);
  CHECK(result.stderr_text.find("no answer within 500 ms") != std::string::npos);
  CHECK(server.requests() == 1);  // not retried
}

TEST_CASE("sandbox_fusion client: a refused connection is retried, then a sandbox error") {
  auto client = start_client(client_config("http://127.0.0.1:" + std::to_string(closed_port())));
  const ExecutionResult result = client->run("print(1)");
  CHECK(result.status == ExecutionStatus::kSandboxError);
  CHECK(result.stderr_text.find("refused") != std::string::npos);
  CHECK(result.stderr_text.find("gave up after 3 attempts") != std::string::npos);
}

TEST_CASE("sandbox_fusion client: a malformed JSON answer is a sandbox error quoting the body") {
  ScriptedServer server({{200, "<html>oops</html>"}});
  auto client = start_client(client_config(server.url()));
  const ExecutionResult result = client->run("print(1)");
  CHECK(result.status == ExecutionStatus::kSandboxError);
  CHECK(result.stderr_text.find("malformed answer") != std::string::npos);
  CHECK(result.stderr_text.find("<html>oops") != std::string::npos);
  CHECK(server.requests() == 1);
}

TEST_CASE("sandbox_fusion client: keep-alive connections are reused and max_concurrency caps requests in flight") {
  // Three answers at once, then every request is held until release().
  ScriptedServer server({{200, kSuccess}, {200, kSuccess}, {200, kSuccess}, {200, kSuccess, 0, true}});
  auto tool = client_config(server.url());
  tool.sandbox_fusion.max_concurrency = 2;
  tool.max_queue = 4;
  std::vector<std::promise<ExecutionResult>> promises(7);  // outlives the client, which answers them
  auto client = start_client(tool);
  for (int i = 0; i < 3; ++i) CHECK(client->run("print(1 + 1)").status == ExecutionStatus::kOk);
  CHECK(server.connections() == 1);

  std::vector<std::future<ExecutionResult>> results;
  for (size_t i = 0; i < promises.size(); ++i) {
    results.push_back(promises[i].get_future());
    client->submit("print(1 + 1)",
                   [&promises, i](ExecutionResult result) { promises[i].set_value(std::move(result)); });
  }
  // The first two are sent and held by the server; the next four wait in the client's queue, which is
  // then full, so the seventh (taken after them) is refused at once. Without the cap it would be sent.
  REQUIRE(server.wait_for_held(2));
  REQUIRE(results[6].wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  const ExecutionResult refused = results[6].get();
  CHECK(refused.status == ExecutionStatus::kSandboxError);
  CHECK(refused.stderr_text.find("queue full") != std::string::npos);
  server.release();
  for (size_t i = 0; i < 6; ++i) CHECK(results[i].get().status == ExecutionStatus::kOk);
  CHECK(server.max_in_flight() == 2);
  CHECK(server.connections() == 2);  // the two connections carried all six
}

// ---- torl sandbox serve ----

TEST_CASE("sandbox serve answers unknown paths with 404, GET /run_code with 405, other SandboxFusion languages with SandboxError") {
  EchoRunner runner;
  auto server = SandboxFusionServer::start("127.0.0.1:0", runner);
  REQUIRE_MESSAGE(server.ok(), server.status().message());
  const uint16_t port = (*server)->port();
  CHECK(port != 0);

  const auto [missing_status, missing_body] = http_exchange(port, http::verb::post, "/run_code", R"({"language":"python"})");
  CHECK(missing_status == 422);
  CHECK(missing_body.find(R"("loc":["body","code"])") != std::string::npos);
  const auto [nowhere_status, nowhere_body] = http_exchange(port, http::verb::get, "/nowhere", "");
  CHECK(nowhere_status == 404);
  CHECK(Json::parse(nowhere_body)["detail"] == "Not Found");
  const auto [get_status, get_body] = http_exchange(port, http::verb::get, "/run_code", "");
  CHECK(get_status == 405);
  CHECK(Json::parse(get_body)["detail"] == "Method Not Allowed");
  CHECK(http_exchange(port, http::verb::post, "/v1/ping", "").first == 405);
  CHECK(runner.calls == 0);  // nothing ran for the refused requests
  const auto [lang_status, lang_body] =
      http_exchange(port, http::verb::post, "/run_code", R"({"code":"x","language":"cpp"})");
  CHECK(lang_status == 200);
  const Json lang = Json::parse(lang_body);
  CHECK(lang["status"] == "SandboxError");
  CHECK(lang["run_result"].is_null());
  CHECK(lang["message"].get<std::string>().find("cpp") != std::string::npos);
  CHECK(runner.calls == 0);
  const auto [ok_status, ok_body] =
      http_exchange(port, http::verb::post, "/run_code", R"j({"code":"print(7)","language":"python"})j");
  CHECK(ok_status == 200);
  CHECK(Json::parse(ok_body)["run_result"]["stdout"] == "print(7)");
}

TEST_CASE("a runner without its own RunRequest support runs plain requests and refuses stdin, files and limits by name") {
  EchoRunner runner;
  std::optional<ExecutionResult> answer;
  RunRequest plain;
  plain.code = "print(1)";
  plain.as_file = true;  // how to run it: a plain runner may ignore it
  static_cast<CodeRunner&>(runner).submit(plain, [&](ExecutionResult result) { answer = std::move(result); });
  REQUIRE(answer);
  CHECK(answer->stdout_text == "print(1)");
  RunRequest with_stdin = plain;
  with_stdin.stdin_text = "1 2";
  static_cast<CodeRunner&>(runner).submit(with_stdin, [&](ExecutionResult result) { answer = std::move(result); });
  CHECK(answer->status == ExecutionStatus::kSandboxError);
  CHECK(answer->stderr_text.find("stdin") != std::string::npos);
  CHECK(runner.calls == 1);
}

TEST_CASE("sandbox serve keeps every request waiting on the runner in flight at once") {
  HeldRunner runner;
  auto server = SandboxFusionServer::start("127.0.0.1:0", runner);
  REQUIRE_MESSAGE(server.ok(), server.status().message());
  auto tool = client_config("http://" + (*server)->address());
  tool.sandbox_fusion.max_concurrency = 8;
  auto client = start_client(tool);
  std::mutex mutex;
  std::condition_variable all_done;
  std::vector<ExecutionResult> results;
  for (int i = 0; i < 8; ++i) {
    client->submit("print(" + std::to_string(i) + ")", [&](ExecutionResult result) {
      std::lock_guard lock(mutex);
      results.push_back(std::move(result));
      all_done.notify_one();
    });
  }
  REQUIRE(runner.wait_for(8));  // all eight reached the runner before any was answered
  runner.release();
  std::unique_lock lock(mutex);
  all_done.wait(lock, [&] { return results.size() == 8; });
  for (const auto& result : results) CHECK(result.status == ExecutionStatus::kOk);
}

TEST_CASE("the sandbox_fusion client and torl sandbox serve agree on ok, error and timeout with the real pool") {
  config::ToolConfig pool_tool;
  pool_tool.workers = 2;
  pool_tool.timeout_ms = 1000;
  pool_tool.memory_mb = 768;
  auto executor = Executor::start(pool_tool);
  REQUIRE_MESSAGE(executor.ok(), executor.status().message());
  auto server = SandboxFusionServer::start("127.0.0.1:0", **executor);
  REQUIRE_MESSAGE(server.ok(), server.status().message());
  auto client = start_client(client_config("http://" + (*server)->address()));

  const ExecutionResult ok = client->run("print(sum(range(10)))");
  CHECK(ok.status == ExecutionStatus::kOk);
  CHECK(ok.stdout_text == "45\n");
  const ExecutionResult error = client->run("1 / 0");
  CHECK(error.status == ExecutionStatus::kError);
  CHECK(error.stderr_text.find("ZeroDivisionError") != std::string::npos);
  const ExecutionResult timeout = client->run("while True: pass");
  CHECK(timeout.status == ExecutionStatus::kTimeout);

  std::vector<std::future<ExecutionResult>> results;
  for (int i = 0; i < 6; ++i) {
    results.push_back(std::async(std::launch::async, [&client, i] { return client->run("print(" + std::to_string(i) + ")"); }));
  }
  for (int i = 0; i < 6; ++i) CHECK(results[static_cast<size_t>(i)].get().stdout_text == std::to_string(i) + "\n");
}

TEST_CASE("start_code_runner starts the sandbox_fusion client for backend sandbox_fusion") {
  config::ToolConfig tool = client_config("ftp://nowhere");
  auto refused = start_code_runner(tool);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().message().find("sandbox_fusion") != std::string::npos);

  ScriptedServer server({{200, kSuccess}});
  tool.sandbox_fusion.url = server.url();
  auto runner = start_code_runner(tool);
  REQUIRE_MESSAGE(runner.ok(), runner.status().message());
  std::promise<ExecutionResult> promise;
  (*runner)->submit("print(1 + 1)", [&](ExecutionResult result) { promise.set_value(std::move(result)); });
  CHECK(promise.get_future().get().stdout_text == "2\n");
}

}  // TEST_SUITE

}  // namespace torl::sandbox
