#include "actors/run_endpoint.hpp"

#include <cmath>
#include <cstdio>
#include <sstream>

namespace torl::actors {
namespace {

// A Prometheus sample value: shortest round-trip text, NaN and infinities as the format spells them.
std::string sample_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", value);
  return text;
}

// "tool/use_rate" -> "tool_use_rate": anything outside [a-zA-Z0-9_] becomes '_'.
std::string metric_name(const std::string& key) {
  std::string name = key;
  for (char& c : name) {
    const bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!allowed) c = '_';
  }
  return name;
}

class PrometheusText {
 public:
  void add(const std::string& name, const char* type, const std::string& help, double value) {
    out_ << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n'
         << name << ' ' << sample_value(value) << '\n';
  }
  std::string str() const { return out_.str(); }

 private:
  std::ostringstream out_;
};

}  // namespace

RunEndpoint::RunEndpoint(int64_t first_step, int64_t steps, const actors::PipelineMetrics& pipeline,
                         const sandbox::CodeRunner& runner)
    : steps_(steps), pipeline_(pipeline), runner_(runner), step_(first_step), step_at_ms_(pipeline.clock().now_ms()) {}

Expected<std::unique_ptr<RunEndpoint>> RunEndpoint::start(int port, int64_t first_step, int64_t steps,
                                                          const actors::PipelineMetrics& pipeline,
                                                          const sandbox::CodeRunner& runner) {
  std::unique_ptr<RunEndpoint> endpoint(new RunEndpoint(first_step, steps, pipeline, runner));
  RunEndpoint* self = endpoint.get();
  auto http = HttpServer::start("127.0.0.1:" + std::to_string(port),
                                [self](HttpRequest request, HttpServer::Respond respond) { respond(self->answer(request)); });
  if (!http) return http.status().with_context("run.metrics_port " + std::to_string(port));
  endpoint->http_ = std::move(*http);
  return endpoint;
}

void RunEndpoint::on_step(const Json& line) {
  std::lock_guard lock(mutex_);
  step_ = line.value("step", step_);
  last_line_ = line;
  step_at_ms_ = pipeline_.clock().now_ms();
}

void RunEndpoint::failed(const std::string& reason) {
  std::lock_guard lock(mutex_);
  failure_ = reason;
}

void RunEndpoint::stopping() {
  std::lock_guard lock(mutex_);
  stopping_ = true;
}

HttpResponse RunEndpoint::answer(const HttpRequest& request) const {
  if (request.method != "GET") return {405, "text/plain; charset=utf-8", "GET /healthz or GET /metrics\n"};
  if (request.path == "/metrics") return {200, "text/plain; version=0.0.4; charset=utf-8", metrics_text()};
  if (request.path == "/healthz") {
    const Json health_now = health();
    return {health_now["status"] == "failed" ? 503 : 200, "application/json",
            health_now.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n"};
  }
  return {404, "text/plain; charset=utf-8", "no such path '" + request.path + "'; try /healthz or /metrics\n"};
}

Json RunEndpoint::health() const {
  std::lock_guard lock(mutex_);
  Json health = {{"status", !failure_.empty() ? "failed" : stopping_ ? "stopping" : "ok"},
                 {"step", step_},
                 {"steps", steps_},
                 {"seconds_since_step", (pipeline_.clock().now_ms() - step_at_ms_) / 1000.0}};
  if (!failure_.empty()) health["reason"] = failure_;
  return health;
}

std::string RunEndpoint::metrics_text() const {
  const actors::MetricsSnapshot p = pipeline_.snapshot();
  PrometheusText text;
  {
    std::lock_guard lock(mutex_);
    text.add("torl_train_step", "gauge", "The last finished training step.", static_cast<double>(step_));
    text.add("torl_train_steps", "gauge", "The step the run ends at (train.steps).", static_cast<double>(steps_));
    text.add("torl_train_seconds_since_step", "gauge", "Seconds since the last step finished (or the run started).",
             (pipeline_.clock().now_ms() - step_at_ms_) / 1000.0);
    text.add("torl_up", "gauge", "1 while the run can go on, 0 once it failed.", failure_.empty() ? 1 : 0);
    if (last_line_.is_object()) {
      for (const auto& [key, value] : last_line_.items()) {
        if (key == "step" || !(value.is_number() || value.is_boolean())) continue;
        text.add("torl_train_" + metric_name(key), "gauge", "metrics.jsonl '" + key + "' of the last step.",
                 value.is_boolean() ? (value.get<bool>() ? 1.0 : 0.0) : value.get<double>());
      }
    }
  }
  text.add("torl_uptime_seconds", "gauge", "Seconds since the rollout pipeline started.", p.elapsed_s);
  text.add("torl_generator_busy_fraction", "gauge",
           "Time the generators spent in decode steps over the time since start, mean over generators.",
           p.generator_busy_fraction);
  text.add("torl_generator_decoding_sequences", "gauge", "Sequences in the decode batches now.",
           static_cast<double>(p.decoding_sequences));
  text.add("torl_generator_queued_jobs", "gauge", "Rollout jobs at the generators waiting for a slot now.",
           static_cast<double>(p.queued_jobs));
  text.add("torl_generator_paused_sequences", "gauge",
           "Sequences paused with the interceptor now (a tool call running, or being scored).",
           static_cast<double>(p.paused_sequences));
  text.add("torl_generator_tokens_total", "counter", "Tokens sampled since start.",
           static_cast<double>(p.generated_tokens));
  text.add("torl_tool_calls_in_flight", "gauge", "Tool calls sent to the sandbox and not answered yet.",
           static_cast<double>(p.tool_calls_in_flight));
  text.add("torl_sandbox_queue_depth", "gauge", "Snippets waiting for a sandbox worker now.",
           static_cast<double>(runner_.queue_depth()));
  text.add("torl_tool_calls_total", "counter", "Tool calls run since start.", static_cast<double>(p.tool_calls));
  text.add("torl_tool_errors_total", "counter", "Tool calls whose code failed since start.",
           static_cast<double>(p.tool_errors));
  text.add("torl_rollout_trajectories_total", "counter", "Trajectories finished since start (training and evals).",
           static_cast<double>(p.trajectories_finished));
  return text.str();
}

}  // namespace torl::actors
