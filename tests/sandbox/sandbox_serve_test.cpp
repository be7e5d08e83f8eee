// `torl sandbox serve` as a drop-in SandboxFusion server: each point of the API that SandboxFusion
// clients (veRL's scoring and tool, SandboxFusion's SDK) rely on, against the real pool where the
// point is about running code, and against a recording runner where it is about reading requests.
// tests/tools/sandbox_serve_test.py drives the same points through a separately started process.
#include <doctest/doctest.h>

#include <mutex>
#include <optional>

#include "common/json.hpp"
#include "config/config.hpp"
#include "sandbox/executor.hpp"
#include "sandbox/run_request.hpp"
#include "sandbox/sandbox_fusion_protocol.hpp"
#include "sandbox/sandbox_fusion_server.hpp"
#include "tests/http_exchange.hpp"

namespace torl::sandbox {
namespace {

namespace http = boost::beast::http;
using testing::http_call;
using testing::HttpReply;

// The server's own limits in these tests; requests ask for tighter or looser ones.
constexpr int kServerTimeoutMs = 3000;
constexpr int kServerMemoryMb = 512;
constexpr int kOutputCap = 1000;

// One pool and one server for the tests that run code (starting a pool costs about a second).
struct ServedPool {
  std::unique_ptr<Executor> executor;
  std::unique_ptr<SandboxFusionServer> server;
};

ServedPool& served_pool() {
  static ServedPool pool = [] {
    config::ToolConfig tool;
    tool.workers = 2;
    tool.timeout_ms = kServerTimeoutMs;
    tool.memory_mb = kServerMemoryMb;
    tool.max_output_bytes = kOutputCap;
    auto executor = Executor::start(tool);
    REQUIRE_MESSAGE(executor.ok(), executor.status().message());
    auto server = SandboxFusionServer::start("127.0.0.1:0", **executor, "node-7");
    REQUIRE_MESSAGE(server.ok(), server.status().message());
    return ServedPool{std::move(*executor), std::move(*server)};
  }();
  return pool;
}

HttpReply post(uint16_t port, const Json& body, const std::string& path = "/run_code") {
  return http_call(port, http::verb::post, path, body.dump());
}

// POSTs `body` to the shared pool's server and returns the answer, which must be HTTP 200 JSON.
Json run(Json body) {
  if (!body.contains("language")) body["language"] = "python";
  const HttpReply reply = post(served_pool().server->port(), body);
  REQUIRE_MESSAGE(reply.status == 200, reply.body);
  CHECK(reply.content_type == "application/json");
  return Json::parse(reply.body);
}

// A runner that records each request and answers it at once with status ok; load() is scripted.
class RecordingRunner : public CodeRunner {
 public:
  void submit(std::string code, Done done) override {
    RunRequest request;
    request.code = std::move(code);
    submit(std::move(request), std::move(done));
  }
  void submit(RunRequest request, Done done) override {
    {
      std::lock_guard lock(mutex_);
      last_ = request;
    }
    ExecutionResult result;
    result.status = ExecutionStatus::kOk;
    result.exit_code = 0;
    done(std::move(result));
  }
  RunnerLoad load() const override { return scripted_load; }
  std::optional<RunRequest> last() {
    std::lock_guard lock(mutex_);
    return last_;
  }
  RunnerLoad scripted_load;

 private:
  std::mutex mutex_;
  std::optional<RunRequest> last_;
};

// The 422 answer's only problem, checked to be FastAPI's shape.
Json only_problem(const HttpReply& reply) {
  CHECK(reply.status == 422);
  CHECK(reply.content_type == "application/json");
  const Json answer = Json::parse(reply.body);
  REQUIRE(answer.contains("detail"));
  REQUIRE(answer["detail"].is_array());
  REQUIRE(answer["detail"].size() == 1);
  const Json& problem = answer["detail"][0];
  CHECK(problem["msg"].is_string());
  CHECK(problem.contains("input"));
  return problem;
}

}  // namespace

TEST_SUITE("sandbox") {

// ---- requests: paths, files and numbers as clients send them ----

TEST_CASE("serve paths: relative paths inside the working directory pass, escaping ones do not") {
  for (const char* good : {"a.txt", "data/in.txt", "./x", "a..b", "..a/b"}) CHECK_MESSAGE(is_safe_relative_path(good), good);
  for (const char* bad : {"", "/etc/passwd", "..", "../x", "a/../../x", "a/..", "dir/"}) {
    CHECK_FALSE_MESSAGE(is_safe_relative_path(bad), bad);
  }
  CHECK_FALSE(is_safe_relative_path(std::string("a\0b", 3)));
  CHECK(is_base64("aGVsbG8="));
  CHECK(is_base64("aGVs\nbG8="));
  CHECK(is_base64(""));
  CHECK_FALSE(is_base64("aGVsbG8"));     // not a multiple of 4
  CHECK_FALSE(is_base64("aGVs*G8="));    // not the alphabet
  CHECK_FALSE(is_base64("aG=sbG8="));    // data after padding
}

TEST_CASE("serve numbers: 1024.0 and \"5\" are accepted as pydantic accepts them, and become the request's limits") {
  RecordingRunner runner;
  auto server = SandboxFusionServer::start("127.0.0.1:0", runner);
  REQUIRE_MESSAGE(server.ok(), server.status().message());
  const uint16_t port = (*server)->port();

  HttpReply reply = post(port, {{"code", "print(1)"}, {"language", "python"}, {"run_timeout", "5"}, {"memory_limit_MB", 1024.0}});
  CHECK(reply.status == 200);
  auto request = runner.last();
  REQUIRE(request);
  CHECK(request->timeout_ms == 5000);
  CHECK(request->memory_mb == 1024);
  CHECK(request->as_file);
  CHECK(request->overflow == OutputOverflow::kKeepRunning);
  CHECK_FALSE(request->stdin_text);

  reply = post(port, {{"code", "x"}, {"language", "python"}, {"run_timeout", 1.5}, {"memory_limit_MB", " 256 "}, {"stdin", "in"}});
  CHECK(reply.status == 200);
  request = runner.last();
  REQUIRE(request);
  CHECK(request->timeout_ms == 1500);
  CHECK(request->memory_mb == 256);
  CHECK(request->stdin_text == std::optional<std::string>("in"));

  // SandboxFusion's defaults: no run_timeout and memory_limit_MB -1 leave the server's limits.
  reply = post(port, {{"code", "x"}, {"language", "python"}, {"memory_limit_MB", -1}});
  CHECK(reply.status == 200);
  request = runner.last();
  REQUIRE(request);
  CHECK(request->timeout_ms == 0);
  CHECK(request->memory_mb == 0);
}

TEST_CASE("serve validation: a bad request is HTTP 422 with FastAPI's detail naming the field, and nothing runs") {
  RecordingRunner runner;
  auto server = SandboxFusionServer::start("127.0.0.1:0", runner);
  REQUIRE_MESSAGE(server.ok(), server.status().message());
  const uint16_t port = (*server)->port();

  Json problem = only_problem(post(port, {{"language", "python"}}));
  CHECK(problem["type"] == "missing");
  CHECK(problem["loc"] == Json::array({"body", "code"}));
  CHECK(problem["msg"] == "Field required");

  problem = only_problem(post(port, {{"code", 5}, {"language", "python"}}));
  CHECK(problem["type"] == "string_type");
  CHECK(problem["loc"] == Json::array({"body", "code"}));
  CHECK(problem["input"] == 5);

  problem = only_problem(post(port, {{"code", "x"}, {"language", "klingon"}}));
  CHECK(problem["type"] == "literal_error");
  CHECK(problem["loc"] == Json::array({"body", "language"}));
  CHECK(problem["msg"].get<std::string>().find("'python'") != std::string::npos);

  problem = only_problem(post(port, {{"code", "x"}, {"language", "python"}, {"run_timeout", "soon"}}));
  CHECK(problem["type"] == "float_parsing");
  CHECK(problem["loc"] == Json::array({"body", "run_timeout"}));

  problem = only_problem(post(port, {{"code", "x"}, {"language", "python"}, {"run_timeout", 0}}));
  CHECK(problem["type"] == "greater_than");

  problem = only_problem(post(port, {{"code", "x"}, {"language", "python"}, {"memory_limit_MB", 1.5}}));
  CHECK(problem["type"] == "int_from_float");
  CHECK(problem["loc"] == Json::array({"body", "memory_limit_MB"}));

  problem = only_problem(post(port, {{"code", "x"}, {"language", "python"}, {"memory_limit_MB", Json::array()}}));
  CHECK(problem["type"] == "int_type");

  problem = only_problem(post(port, {{"code", "x"}, {"language", "python"}, {"stdin", 3}}));
  CHECK(problem["loc"] == Json::array({"body", "stdin"}));

  problem = only_problem(post(port, {{"code", "x"}, {"language", "python"}, {"files", {{"a.txt", "not base64!"}}}}));
  CHECK(problem["loc"] == Json::array({"body", "files", "a.txt"}));
  CHECK(problem["type"] == "value_error");

  const HttpReply not_json = http_call(port, http::verb::post, "/run_code", "{not json");
  problem = only_problem(not_json);
  CHECK(problem["type"] == "json_invalid");
  CHECK(problem["loc"][0] == "body");

  // Every problem is listed, not only the first.
  const HttpReply two = post(port, {{"code", 1}, {"language", "python"}, {"run_timeout", "x"}});
  CHECK(two.status == 422);
  CHECK(Json::parse(two.body)["detail"].size() == 2);
  CHECK_FALSE(runner.last());  // nothing reached the runner
}

TEST_CASE("serve paths: a file or fetch_files path that leaves the working directory is refused with 422 naming it") {
  RecordingRunner runner;
  auto server = SandboxFusionServer::start("127.0.0.1:0", runner);
  REQUIRE_MESSAGE(server.ok(), server.status().message());
  const uint16_t port = (*server)->port();

  Json problem = only_problem(post(port, {{"code", "x"}, {"language", "python"}, {"files", {{"../evil.py", "eA=="}}}}));
  CHECK(problem["loc"] == Json::array({"body", "files", "../evil.py"}));
  CHECK(problem["type"] == "value_error");
  CHECK(problem["msg"].get<std::string>().find("inside the working directory") != std::string::npos);

  problem = only_problem(post(port, {{"code", "x"}, {"language", "python"}, {"fetch_files", {"ok.txt", "/etc/passwd"}}}));
  CHECK(problem["loc"] == Json::array({"body", "fetch_files", 1}));
  CHECK(problem["input"] == "/etc/passwd");
  CHECK_FALSE(runner.last());
}

// ---- endpoints ----

TEST_CASE("serve endpoints: /v1/ping is the JSON string \"pong\" and /run_code/ is served like /run_code") {
  RecordingRunner runner;
  auto server = SandboxFusionServer::start("127.0.0.1:0", runner);
  REQUIRE_MESSAGE(server.ok(), server.status().message());
  const uint16_t port = (*server)->port();

  const HttpReply ping = http_call(port, http::verb::get, "/v1/ping");
  CHECK(ping.status == 200);
  CHECK(ping.body == "\"pong\"");
  CHECK(ping.content_type == "application/json");
  CHECK(Json::parse(ping.body) == "pong");

  const HttpReply slash = post(port, {{"code", "print(1)"}, {"language", "python"}}, "/run_code/");
  CHECK(slash.status == 200);
  CHECK(Json::parse(slash.body)["status"] == "Success");
  CHECK(runner.last());
}

TEST_CASE("serve endpoints: /v1/status reports the runner's workers, running, queued, latency and limits") {
  RecordingRunner runner;
  runner.scripted_load = {.workers = 16, .running = 16, .queued = 40, .executions = 1234,
                          .latency_p50_ms = 12.5, .latency_p99_ms = 800, .max_queue = 1024,
                          .timeout_ms = 10000, .memory_mb = 1024};
  auto server = SandboxFusionServer::start("127.0.0.1:0", runner);
  REQUIRE_MESSAGE(server.ok(), server.status().message());
  const HttpReply reply = http_call((*server)->port(), http::verb::get, "/v1/status");
  CHECK(reply.status == 200);
  CHECK(reply.content_type == "application/json");
  const Json status = Json::parse(reply.body);
  CHECK(status["workers"] == 16);
  CHECK(status["running"] == 16);
  CHECK(status["queued"] == 40);
  CHECK(status["requests_in_flight"] == 0);
  CHECK(status["executions"] == 1234);
  CHECK(status["latency_p50_ms"] == 12.5);
  CHECK(status["latency_p99_ms"] == 800.0);
  CHECK(status["max_queue"] == 1024);
  CHECK(status["timeout_ms"] == 10000);
  CHECK(status["memory_mb"] == 1024);
}

// ---- running code in the real pool ----

TEST_CASE("serve run: the answer has SandboxFusion's shape: compile_result null, executor_pod_name, files") {
  const Json answer = run({{"code", "print(6 * 7)"}});
  CHECK(answer["status"] == "Success");
  CHECK(answer["message"] == "");
  CHECK(answer.contains("compile_result"));
  CHECK(answer["compile_result"].is_null());
  CHECK(answer["executor_pod_name"] == "node-7");
  CHECK(answer["files"] == Json::object());
  CHECK(answer["run_result"]["status"] == "Finished");
  CHECK(answer["run_result"]["return_code"] == 0);
  CHECK(answer["run_result"]["stdout"] == "42\n");
  CHECK(answer["run_result"]["execution_time"].is_number());
  CHECK(answer["truncated"] == false);
}

TEST_CASE("serve run: the request's stdin is the program's stdin") {
  const Json answer = run({{"code", "import sys\nlines = sys.stdin.read().split()\nprint(sum(map(int, lines)))\n"},
                           {"stdin", "1 2\n3\n"}});
  CHECK(answer["run_result"]["stdout"] == "6\n");
  // input() too, and EOF after the last line
  const Json prompt = run({{"code", "a = input()\ntry:\n    input()\nexcept EOFError:\n    print(a.upper(), 'EOF')\n"},
                           {"stdin", "abc\n"}});
  CHECK(prompt["run_result"]["stdout"] == "ABC EOF\n");
  // without stdin the program reads EOF at once
  CHECK(run({{"code", "import sys; print(repr(sys.stdin.read()))"}})["run_result"]["stdout"] == "''\n");
}

TEST_CASE("serve run: the code runs from a file in the working directory: __file__ and sys.argv[0] are its path") {
  const Json answer = run({{"code",
                            "import os, sys\n"
                            "print(__file__ == sys.argv[0], len(sys.argv), __name__)\n"
                            "print(os.path.dirname(__file__) == os.getcwd(), sys.path[0] == os.getcwd())\n"
                            "print(open(__file__).read().splitlines()[0])\n"}});
  CHECK(answer["run_result"]["stdout"] == "True 1 __main__\nTrue True\nimport os, sys\n");
  // A traceback names the file and shows the failing line, as `python FILE` does.
  const Json error = run({{"code", "x = 1\ny = x / 0\n"}});
  CHECK(error["status"] == "Failed");
  CHECK(error["run_result"]["return_code"] == 1);
  const std::string stderr_text = error["run_result"]["stderr"];
  CHECK(stderr_text.find(".py\", line 2") != std::string::npos);
  CHECK(stderr_text.find("y = x / 0") != std::string::npos);
  CHECK(stderr_text.find("ZeroDivisionError") != std::string::npos);
}

TEST_CASE("serve run: files are written before the run and fetch_files come back base64; missing ones are left out") {
  const Json answer = run({{"code",
                            "import helper\n"
                            "text = open('data/in.txt').read()\n"
                            "open('out.txt', 'w').write(helper.shout(text))\n"},
                           {"files", {{"data/in.txt", "aGVsbG8="},  // "hello"
                                      {"helper.py", "ZGVmIHNob3V0KHMpOiByZXR1cm4gcy51cHBlcigp"},  // def shout(s): return s.upper()
                                      {"ignored.txt", nullptr}}},
                           {"fetch_files", {"out.txt", "missing.txt", "data/in.txt"}}});
  CHECK(answer["status"] == "Success");
  CHECK(answer["files"] == Json{{"out.txt", "SEVMTE8="}, {"data/in.txt", "aGVsbG8="}});  // "HELLO", "hello"
  // The next request starts in an empty folder.
  const Json next = run({{"code", "import os; print(sorted(n for n in os.listdir('.') if not n.startswith('snippet_')))"}});
  CHECK(next["run_result"]["stdout"] == "[]\n");
}

TEST_CASE("serve run: a fetched symlink that leads out of the working directory is left out") {
  const Json answer = run({{"code", "import os\nos.symlink('/etc/passwd', 'link')\nopen('inside.txt', 'w').write('x')\n"},
                           {"fetch_files", {"link", "inside.txt"}}});
  CHECK(answer["status"] == "Success");
  CHECK(answer["files"] == Json{{"inside.txt", "eA=="}});
}

TEST_CASE("serve limits: a run_timeout shorter than the server's times the code out") {
  const Json answer = run({{"code", "import time\ntime.sleep(1.5)\nprint('late')\n"}, {"run_timeout", 0.3}});
  CHECK(answer["status"] == "Failed");
  CHECK(answer["run_result"]["status"] == "TimeLimitExceeded");
  CHECK(answer["run_result"]["return_code"].is_null());
  CHECK(answer["run_result"]["stdout"].get<std::string>().find("late") == std::string::npos);
}

TEST_CASE("serve limits: a run_timeout longer than the server's is capped at the server's") {
  // Without the cap this would run for 1000 s and the exchange's deadline would fail the test.
  const Json answer = run({{"code", "while True: pass"}, {"run_timeout", 1000}});
  CHECK(answer["run_result"]["status"] == "TimeLimitExceeded");
  CHECK(answer["run_result"]["execution_time"].get<double>() < 100);
}

TEST_CASE("serve limits: memory_limit_MB tighter than the server's applies, and a looser one is capped") {
  // 300 MB fits the server's 512 MB but not the request's 200 MB.
  const Json tight = run({{"code", "x = bytearray(300 * 1024 * 1024)\nprint('allocated')"}, {"memory_limit_MB", 200}});
  CHECK(tight["status"] == "Failed");
  CHECK(tight["run_result"]["return_code"] == 1);
  CHECK(tight["run_result"]["stderr"].get<std::string>().find("MemoryError") != std::string::npos);
  CHECK(tight["torl_status"] == "memory");
  const Json fits = run({{"code", "x = bytearray(300 * 1024 * 1024)\nprint('allocated')"}});
  CHECK(fits["run_result"]["stdout"] == "allocated\n");
  // 700 MB would fit the request's 100000 MB, but the server's 512 MB caps it.
  const Json loose = run({{"code", "x = bytearray(700 * 1024 * 1024)\nprint('allocated')"}, {"memory_limit_MB", 100000}});
  CHECK(loose["status"] == "Failed");
  CHECK(loose["run_result"]["stderr"].get<std::string>().find("MemoryError") != std::string::npos);
}

TEST_CASE("serve output: past the cap it is cut and flagged, and the program's own exit status is reported, every time") {
  for (int attempt = 0; attempt < 5; ++attempt) {
    CAPTURE(attempt);
    const Json failed = run({{"code", "import sys\nsys.stdout.write('x' * 200000)\nsys.stdout.flush()\nsys.exit(3)\n"}});
    CHECK(failed["status"] == "Failed");
    CHECK(failed["run_result"]["status"] == "Finished");
    CHECK(failed["run_result"]["return_code"] == 3);
    CHECK(failed["run_result"]["stdout"] == std::string(kOutputCap, 'x'));
    CHECK(failed["truncated"] == true);
    CHECK(failed["torl_status"] == "error");

    const Json ok = run({{"code", "import sys\nsys.stderr.write('e' * 200000)\nprint('done')\n"}});
    CHECK(ok["status"] == "Success");
    CHECK(ok["run_result"]["return_code"] == 0);
    CHECK(ok["run_result"]["stdout"] == "done\n");
    CHECK(ok["run_result"]["stderr"] == std::string(kOutputCap, 'e'));
    CHECK(ok["truncated"] == true);
  }
  // A program that never stops writing ends at the timeout, its output cut (2 s: time enough to pass
  // the cap on a loaded machine).
  const Json flood = run({{"code", "while True: print('y' * 100)"}, {"run_timeout", 2}});
  CHECK(flood["run_result"]["status"] == "TimeLimitExceeded");
  CHECK(flood["run_result"]["stdout"].get<std::string>().size() == static_cast<size_t>(kOutputCap));
  CHECK(flood["truncated"] == true);
}

TEST_CASE("serve status: the real pool reports its workers, nothing running or queued once answered, and its executions") {
  run({{"code", "print(1)"}});
  const HttpReply reply = http_call(served_pool().server->port(), http::verb::get, "/v1/status");
  CHECK(reply.status == 200);
  const Json status = Json::parse(reply.body);
  CHECK(status["workers"] == 2);
  CHECK(status["running"] == 0);
  CHECK(status["queued"] == 0);
  CHECK(status["requests_in_flight"] == 0);
  CHECK(status["executions"].get<int>() >= 1);
  CHECK(status["latency_p50_ms"].get<double>() > 0);
  CHECK(status["timeout_ms"] == kServerTimeoutMs);
  CHECK(status["memory_mb"] == kServerMemoryMb);
}

TEST_CASE("serve run: the plain submit of the tool loop still runs like python -c and kills a flood") {
  Executor& executor = *served_pool().executor;
  const ExecutionResult plain = executor.run("import sys; print(sys.argv, '__file__' in globals())");
  CHECK(plain.status == ExecutionStatus::kOk);
  CHECK(plain.stdout_text == "['-c'] False\n");
  const ExecutionResult flood = executor.run("while True: print('y' * 100)");
  CHECK(flood.status == ExecutionStatus::kOutputLimit);
  CHECK(flood.truncated);
}

}  // TEST_SUITE

}  // namespace torl::sandbox
