#include "actors/metrics.hpp"

#include <algorithm>
#include <numeric>

#include "common/stats.hpp"

namespace torl::actors {

void PipelineMetrics::on_step(int generator, double busy_ms, int64_t sampled_tokens) {
  std::lock_guard lock(mutex_);
  busy_ms_[static_cast<size_t>(generator)] += busy_ms;
  ++counts_.steps;
  counts_.generated_tokens += static_cast<uint64_t>(sampled_tokens);
}

void PipelineMetrics::on_occupancy(int generator, int64_t decoding, int64_t queued, int64_t paused, int64_t held) {
  std::lock_guard lock(mutex_);
  occupancy_[static_cast<size_t>(generator)] = {decoding, queued, paused};
  counts_.max_paused_per_generator = std::max(counts_.max_paused_per_generator, paused);
  counts_.max_held_per_generator = std::max(counts_.max_held_per_generator, held);
}

void PipelineMetrics::on_tool_call_started() {
  std::lock_guard lock(mutex_);
  ++counts_.tool_calls_in_flight;
  counts_.max_tool_calls_in_flight = std::max(counts_.max_tool_calls_in_flight, counts_.tool_calls_in_flight);
}

void PipelineMetrics::on_tool_call_finished(double latency_ms, double queue_ms, bool failed) {
  std::lock_guard lock(mutex_);
  --counts_.tool_calls_in_flight;
  ++counts_.tool_calls;
  if (failed) ++counts_.tool_errors;
  latencies_ms_.push_back(latency_ms);
  queue_ms_.push_back(queue_ms);
}

void PipelineMetrics::on_cache_released() {
  std::lock_guard lock(mutex_);
  ++counts_.cache_releases;
}

void PipelineMetrics::on_void_call() {
  std::lock_guard lock(mutex_);
  ++counts_.void_calls;
}

void PipelineMetrics::on_trajectory_finished() {
  std::lock_guard lock(mutex_);
  ++counts_.trajectories_finished;
}

void PipelineMetrics::stop() {
  std::lock_guard lock(mutex_);
  if (stopped_ms_ < 0) stopped_ms_ = clock_.now_ms();
}

MetricsSnapshot PipelineMetrics::snapshot() const {
  std::lock_guard lock(mutex_);
  MetricsSnapshot s = counts_;
  const double elapsed_ms = stopped_ms_ >= 0 ? stopped_ms_ : clock_.now_ms();
  s.elapsed_s = elapsed_ms / 1000.0;
  if (elapsed_ms > 0 && !busy_ms_.empty()) {
    s.generator_busy_fraction =
        std::accumulate(busy_ms_.begin(), busy_ms_.end(), 0.0) / static_cast<double>(busy_ms_.size()) / elapsed_ms;
    s.tokens_per_s = static_cast<double>(s.generated_tokens) / s.elapsed_s;
    s.trajectories_per_s = static_cast<double>(s.trajectories_finished) / s.elapsed_s;
  }
  for (const auto& [decoding, queued, paused] : occupancy_) {
    s.decoding_sequences += decoding;
    s.queued_jobs += queued;
    s.paused_sequences += paused;
  }
  s.tool_latency_p50_ms = percentile(latencies_ms_, 0.5);
  s.tool_latency_p99_ms = percentile(latencies_ms_, 0.99);
  s.sandbox_queue_p50_ms = percentile(queue_ms_, 0.5);
  s.sandbox_queue_p99_ms = percentile(queue_ms_, 0.99);
  return s;
}

Json MetricsSnapshot::to_json() const {
  return {{"time/rollout_s", elapsed_s},
          {"generator/busy_fraction", generator_busy_fraction},
          {"generator/steps", steps},
          {"generator/tokens", generated_tokens},
          {"generator/tokens_per_s", tokens_per_s},
          {"generator/max_paused", max_paused_per_generator},
          {"generator/max_held", max_held_per_generator},
          {"generator/cache_releases", cache_releases},
          {"tool/calls", tool_calls},
          {"tool/errors", tool_errors},
          {"tool/void_calls", void_calls},
          {"tool/in_flight", tool_calls_in_flight},
          {"tool/max_in_flight", max_tool_calls_in_flight},
          {"tool/latency_p50_ms", tool_latency_p50_ms},
          {"tool/latency_p99_ms", tool_latency_p99_ms},
          {"sandbox/queue_p50_ms", sandbox_queue_p50_ms},
          {"sandbox/queue_p99_ms", sandbox_queue_p99_ms},
          {"rollout/trajectories", trajectories_finished},
          {"rollout/trajectories_per_s", trajectories_per_s}};
}

}  // namespace torl::actors
