// A training run's /healthz and /metrics: the metrics page parses as Prometheus text and carries the
// last step's values and the pipeline's gauges; health turns 503 when the run fails.
#include <doctest/doctest.h>

#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "tests/http_exchange.hpp"
#include "actors/run_endpoint.hpp"

namespace torl::actors {
namespace {

namespace http = boost::beast::http;
using testing::http_exchange;

// A runner that never runs anything and reports a fixed queue.
class QueueRunner : public sandbox::CodeRunner {
 public:
  void submit(std::string, Done) override {}
  size_t queue_depth() const override { return 3; }
};

// Parses the Prometheus text exposition format (0.0.4), failing the test on any line that breaks it:
// a sample needs a TYPE line before it, names are [a-zA-Z_:][a-zA-Z0-9_:]*, values are floats, and no
// metric is described or sampled twice. Returns the samples by name.
std::map<std::string, double> parse_prometheus(const std::string& text) {
  static const std::regex help(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+)");
  static const std::regex type(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped))");
  static const std::regex sample(R"(([a-zA-Z_:][a-zA-Z0-9_:]*) ([-+]?([0-9.eE+-]+|NaN|Inf)))");
  std::map<std::string, double> samples;
  std::set<std::string> typed, helped;
  std::istringstream lines(text);
  std::string line;
  int number = 0;
  while (std::getline(lines, line)) {
    ++number;
    INFO("line " << number << ": " << line);
    std::smatch m;
    if (std::regex_match(line, m, help)) {
      CHECK(helped.insert(m[1]).second);
    } else if (std::regex_match(line, m, type)) {
      CHECK(typed.insert(m[1]).second);
    } else if (std::regex_match(line, m, sample)) {
      CHECK(typed.count(m[1]) == 1);
      size_t used = 0;
      const std::string value = m[2];
      const double parsed = value.find("Inf") != std::string::npos || value == "NaN" ? 0.0 : std::stod(value, &used);
      if (used > 0) CHECK(used == value.size());
      CHECK(samples.emplace(m[1], parsed).second);
    } else {
      FAIL("not Prometheus text");
    }
  }
  CHECK(text.back() == '\n');
  return samples;
}

}  // namespace

TEST_SUITE("actors") {
  TEST_CASE("/metrics parses as Prometheus text with the last step's metrics and the pipeline gauges") {
    actors::PipelineMetrics pipeline(2);
    QueueRunner runner;
    auto endpoint = RunEndpoint::start(0, 4, 10, pipeline, runner);
    REQUIRE_MESSAGE(endpoint.ok(), endpoint.status().message());
    const uint16_t port = (*endpoint)->port();

    auto before = parse_prometheus(http_exchange(port, http::verb::get, "/metrics").second);
    CHECK(before.at("torl_train_step") == 4);  // resumed at step 4: nothing new yet
    CHECK(before.count("torl_train_reward_mean") == 0);

    pipeline.on_tool_call_started();
    pipeline.on_tool_call_started();
    pipeline.on_tool_call_finished(5.0, 1.0, true);
    pipeline.on_occupancy(0, 6, 2, 1);
    pipeline.on_occupancy(1, 4, 0, 3);
    pipeline.on_step(0, 10.0, 17);
    (*endpoint)->on_step(Json{{"step", 5},
                              {"updated", true},
                              {"reward/mean", -0.25},
                              {"tool/use_rate", 0.5},
                              {"optim/grad_norm", std::numeric_limits<double>::infinity()},
                              {"skipped_because", ""},
                              {"data/problems", {1, 2}}});
    const auto [status, body] = http_exchange(port, http::verb::get, "/metrics");
    CHECK(status == 200);
    const auto after = parse_prometheus(body);
    CHECK(after.at("torl_train_step") == 5);
    CHECK(after.at("torl_train_steps") == 10);
    CHECK(after.at("torl_train_reward_mean") == -0.25);
    CHECK(after.at("torl_train_tool_use_rate") == 0.5);
    CHECK(after.at("torl_train_updated") == 1);
    CHECK(after.count("torl_train_optim_grad_norm") == 1);
    CHECK(body.find("torl_train_optim_grad_norm +Inf\n") != std::string::npos);
    CHECK(after.count("torl_train_data_problems") == 0);  // lists and text are not samples
    CHECK(after.at("torl_tool_calls_in_flight") == 1);
    CHECK(after.at("torl_tool_calls_total") == 1);
    CHECK(after.at("torl_tool_errors_total") == 1);
    CHECK(after.at("torl_sandbox_queue_depth") == 3);
    CHECK(after.at("torl_generator_decoding_sequences") == 10);
    CHECK(after.at("torl_generator_queued_jobs") == 2);
    CHECK(after.at("torl_generator_paused_sequences") == 4);
    CHECK(after.at("torl_generator_tokens_total") == 17);
    CHECK(after.at("torl_up") == 1);
    CHECK(body.find("# TYPE torl_tool_calls_total counter\n") != std::string::npos);
  }

  TEST_CASE("/healthz says ok with the step, stopping after a signal, and 503 with the reason once the run failed") {
    actors::PipelineMetrics pipeline(1);
    QueueRunner runner;
    auto endpoint = RunEndpoint::start(0, 0, 3, pipeline, runner);
    REQUIRE(endpoint.ok());
    const uint16_t port = (*endpoint)->port();
    (*endpoint)->on_step(Json{{"step", 1}});
    auto [status, body] = http_exchange(port, http::verb::get, "/healthz");
    CHECK(status == 200);
    Json health = Json::parse(body);
    CHECK(health["status"] == "ok");
    CHECK(health["step"] == 1);
    CHECK(health["steps"] == 3);
    CHECK(health["seconds_since_step"].get<double>() >= 0);

    (*endpoint)->stopping();
    std::tie(status, body) = http_exchange(port, http::verb::get, "/healthz");
    CHECK(status == 200);
    CHECK(Json::parse(body)["status"] == "stopping");

    (*endpoint)->failed("cannot write checkpoint step 2: No space left on device");
    std::tie(status, body) = http_exchange(port, http::verb::get, "/healthz");
    CHECK(status == 503);
    health = Json::parse(body);
    CHECK(health["status"] == "failed");
    CHECK(health["reason"].get<std::string>().find("No space left") != std::string::npos);
    CHECK(parse_prometheus(http_exchange(port, http::verb::get, "/metrics").second).at("torl_up") == 0);
    CHECK(http_exchange(port, http::verb::get, "/nothing").first == 404);
    CHECK(http_exchange(port, http::verb::post, "/metrics").first == 405);
  }

  TEST_CASE("a metrics port in use is an error naming run.metrics_port") {
    actors::PipelineMetrics pipeline(1);
    QueueRunner runner;
    auto first = RunEndpoint::start(0, 0, 1, pipeline, runner);
    REQUIRE(first.ok());
    const int port = (*first)->port();
    auto second = RunEndpoint::start(port, 0, 1, pipeline, runner);
    REQUIRE_FALSE(second.ok());
    CHECK(second.status().message().find("run.metrics_port " + std::to_string(port)) != std::string::npos);
  }
}

}  // namespace torl::actors
