// CodeRunner: what the rest of torl needs from a sandbox backend: hand over a Python snippet, hear
// back exactly one ExecutionResult. Implemented by the local worker pool (Executor) and by the
// SandboxFusion HTTP client; tests and benchmarks pass scripted runners.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/status.hpp"
#include "config/config.hpp"
#include "sandbox/execution_result.hpp"
#include "sandbox/run_request.hpp"

namespace torl::sandbox {

// How busy a runner is, now; for `torl sandbox serve`'s /v1/status. Fields a runner cannot tell are 0.
struct RunnerLoad {
  int workers = 0;         // snippets it runs at once
  size_t running = 0;      // on a worker now
  size_t queued = 0;       // waiting for a worker now
  uint64_t executions = 0;  // finished since start
  double latency_p50_ms = 0, latency_p99_ms = 0;  // queue + run, over recent executions
  size_t max_queue = 0;    // queued snippets beyond which new ones are refused
  int timeout_ms = 0;      // the runner's own limits, which per-request limits cannot raise
  int memory_mb = 0;
};

class CodeRunner {
 public:
  using Done = std::function<void(ExecutionResult)>;
  virtual ~CodeRunner() = default;

  // Queues `code`; `done` runs exactly once, on a thread of the runner, and must not block. Never
  // throws: a snippet the runner cannot take ends as kSandboxError. May be called from any thread.
  virtual void submit(std::string code, Done done) = 0;

  // Queues `request`, with the same contract. Per-request limits only tighten the runner's own. This
  // default runs requests that ask for nothing but the code (RunRequest::only_code; `as_file` and
  // `overflow` are ignored) through submit(std::string, Done), and ends the others as kSandboxError
  // naming what this runner cannot do; the local pool (Executor) runs every request.
  virtual void submit(RunRequest request, Done done);

  // Snippets submitted and not yet started (waiting for a worker or a connection), now; for the
  // run's /metrics. Any thread. 0 where a runner cannot tell.
  virtual size_t queue_depth() const { return 0; }

  // Workers, running and queued snippets, recent latency; any thread. This default knows only the queue.
  virtual RunnerLoad load() const;
};

// The backend named by tool.backend (local worker pool, or a SandboxFusion cluster), started and
// ready, or why it could not start.
Expected<std::unique_ptr<CodeRunner>> start_code_runner(const config::ToolConfig& tool);

}  // namespace torl::sandbox
