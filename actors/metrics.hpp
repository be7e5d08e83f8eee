// PipelineMetrics: the run's counters and gauges, updated by the actors as they work and read by
// whoever reports (torl eval's summary, the bench, later the /metrics endpoint). Every method locks;
// any thread. Times are milliseconds on the run clock (RunClock), which starts when the pipeline does.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <vector>

#include "common/json.hpp"

namespace torl::actors {

class RunClock {
 public:
  double now_ms() const {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

struct MetricsSnapshot {
  double elapsed_s = 0;
  double generator_busy_fraction = 0;  // time in decode/prefill steps over elapsed, mean over generators
  uint64_t steps = 0;                  // engine steps, all generators
  uint64_t generated_tokens = 0;       // sampled tokens
  double tokens_per_s = 0;             // sampled tokens / elapsed
  int64_t tool_calls_in_flight = 0;    // now
  int64_t max_tool_calls_in_flight = 0;
  int64_t max_paused_per_generator = 0;  // most paused sequences one generator had with the interceptor
  int64_t max_held_per_generator = 0;    // most it held back: async, as tool.max_pending were out; rounds, till the round ended
  // now, summed over the generators: sequences in the decode batch, jobs waiting for a slot,
  // sequences paused with the interceptor (tool calls and finished ones being scored)
  int64_t decoding_sequences = 0, queued_jobs = 0, paused_sequences = 0;
  uint64_t tool_calls = 0, tool_errors = 0, void_calls = 0;
  uint64_t cache_releases = 0;         // KV caches freed while idle (rollout.cache_during_update: free)
  double sandbox_queue_p50_ms = 0, sandbox_queue_p99_ms = 0;  // waiting for a worker
  double tool_latency_p50_ms = 0, tool_latency_p99_ms = 0;    // request to result
  uint64_t trajectories_finished = 0;
  double trajectories_per_s = 0;

  Json to_json() const;  // keys named component/name_unit, e.g. "rollout/tokens_per_s"
};

class PipelineMetrics {
 public:
  explicit PipelineMetrics(int generators)
      : busy_ms_(static_cast<size_t>(generators), 0.0), occupancy_(static_cast<size_t>(generators)) {}

  const RunClock& clock() const { return clock_; }

  void on_step(int generator, double busy_ms, int64_t sampled_tokens);
  // A generator's sequences after it handed stops over: decoding, queued jobs, paused with the interceptor.
  // `held`: paused sequences the generator keeps back because tool.max_pending are with the interceptor.
  void on_occupancy(int generator, int64_t decoding, int64_t queued, int64_t paused, int64_t held = 0);
  void on_tool_call_started();
  void on_tool_call_finished(double latency_ms, double queue_ms, bool failed);
  void on_void_call();
  void on_cache_released();
  void on_trajectory_finished();
  // Elapsed time stops at the first call; later snapshots report the same window.
  void stop();

  MetricsSnapshot snapshot() const;

 private:
  RunClock clock_;
  mutable std::mutex mutex_;
  // ---- guarded by mutex_ ----
  std::vector<double> busy_ms_;  // per generator
  std::vector<std::array<int64_t, 3>> occupancy_;  // per generator: decoding, queued, paused
  double stopped_ms_ = -1;
  MetricsSnapshot counts_;             // the counters and gauges; rates filled in snapshot()
  std::vector<double> latencies_ms_, queue_ms_;
};

}  // namespace torl::actors
