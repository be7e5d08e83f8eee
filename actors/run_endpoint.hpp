// RunEndpoint: a training run's HTTP endpoint on 127.0.0.1:run.metrics_port (off when 0), for
// monitoring a job that runs for days:
//   GET /healthz  200 {"status":"ok","step":12,"steps":200,"seconds_since_step":4.2}; "stopping" once
//                 a stop signal came (the step in flight finishes); 503 with "status":"failed" and the
//                 reason once the run cannot go on
//   GET /metrics  the Prometheus text format (0.0.4): the last step's metrics.jsonl values as
//                 torl_train_* gauges, the pipeline's gauges and counters (generator busy fraction,
//                 sequences decoding/queued/paused, tool calls in flight, sandbox queue depth) and
//                 torl_train_step / torl_train_steps.
// Metric names are the metrics.jsonl keys with '/' as '_': "tool/use_rate" -> torl_train_tool_use_rate.
// Owned by `torl train` (rank 0); on_step and failed may be called from any thread; the pipeline
// metrics and the runner must outlive the endpoint. Destroying it stops serving.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "actors/metrics.hpp"
#include "common/http_server.hpp"
#include "common/json.hpp"
#include "common/status.hpp"
#include "sandbox/code_runner.hpp"

namespace torl::actors {

class RunEndpoint {
 public:
  // Serves on 127.0.0.1:`port` (0 picks a free one), or says why it cannot (port in use).
  static Expected<std::unique_ptr<RunEndpoint>> start(int port, int64_t first_step, int64_t steps,
                                                      const actors::PipelineMetrics& pipeline,
                                                      const sandbox::CodeRunner& runner);

  // A step finished; `line` is its metrics.jsonl record.
  void on_step(const Json& line);
  // The run cannot go on (a checkpoint could not be written, ...): /healthz answers 503 from now.
  void failed(const std::string& reason);
  // A stop signal came: /healthz says "stopping" (still 200).
  void stopping();

  std::string address() const { return http_->address(); }
  uint16_t port() const { return http_->port(); }

 private:
  RunEndpoint(int64_t first_step, int64_t steps, const actors::PipelineMetrics& pipeline,
              const sandbox::CodeRunner& runner);
  HttpResponse answer(const HttpRequest& request) const;
  Json health() const;
  std::string metrics_text() const;

  const int64_t steps_;
  const actors::PipelineMetrics& pipeline_;
  const sandbox::CodeRunner& runner_;

  mutable std::mutex mutex_;
  // ---- guarded by mutex_ ----
  int64_t step_;          // the last finished step
  Json last_line_;        // its metrics.jsonl record (null before the first step of this process)
  double step_at_ms_;     // when, on the pipeline's clock
  std::string failure_;   // empty while healthy
  bool stopping_ = false;

  std::unique_ptr<HttpServer> http_;  // last: stops serving before the state above goes
};

}  // namespace torl::actors
