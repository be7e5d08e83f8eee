// Executor: the sandbox as a service. A pool of `tool.workers` fork-server workers behind a queue of
// at most `tool.max_queue` snippets, driven by one Boost.Asio thread that the Executor owns.
//
// submit() may be called from any thread; each submitted snippet ends with exactly one callback, on
// the executor's thread, carrying an ExecutionResult (never an exception, never silence): a snippet
// that cannot be queued, or whose worker dies, ends as kSandboxError. A worker that dies is replaced.
// Destroying the Executor ends queued snippets with kSandboxError and kills every worker.
#pragma once

#include <array>
#include <chrono>
#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/asio.hpp"

#include "common/status.hpp"
#include "config/config.hpp"
#include "sandbox/code_runner.hpp"
#include "sandbox/execution_result.hpp"
#include "sandbox/isolation.hpp"

namespace torl::sandbox {

class ForkServer;

// The limits `request` runs under in a pool configured by `tool`: its own where they are tighter,
// the tool's otherwise (a request's 0 means the tool's).
RunRequest capped_by(RunRequest request, const config::ToolConfig& tool);

// A snapshot of the executor's counters; latencies are over the most recent 8192 executions.
struct ExecutorMetrics {
  std::array<uint64_t, 7> executions_by_status{};  // indexed by ExecutionStatus
  uint64_t worker_restarts = 0;
  size_t queue_depth = 0;  // waiting for a worker now
  size_t running = 0;      // on a worker now
  double queue_p50_ms = 0, queue_p99_ms = 0;
  double run_p50_ms = 0, run_p99_ms = 0;
  double total_p50_ms = 0, total_p90_ms = 0, total_p99_ms = 0;  // queue + run

  uint64_t executions() const;
};

class Executor : public CodeRunner {
 public:

  // Starts the workers and waits until all of them are ready (a few hundred ms each, in parallel),
  // or returns why one could not start.
  static Expected<std::unique_ptr<Executor>> start(const config::ToolConfig& tool);
  ~Executor() override;
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Queues `code`; `done` runs on the executor thread and must not block.
  void submit(std::string code, Done done) override;

  // Queues `request` (stdin, files, fetch_files, run as a file, output overflow); its timeout_ms and
  // memory_mb are capped at tool.timeout_ms and tool.memory_mb (0 means those).
  void submit(RunRequest request, Done done) override;

  // Runs `code` and waits for its result. Not to be called from the executor thread.
  ExecutionResult run(std::string code);

  size_t queue_depth() const override { return queue_depth_; }
  RunnerLoad load() const override;
  ExecutorMetrics metrics() const;
  const config::ToolConfig& tool() const { return isolation_.tool(); }

 private:
  struct Pending {
    RunRequest request;
    Done done;
    std::chrono::steady_clock::time_point queued_at;
  };

  explicit Executor(Isolation isolation);
  // Starts the worker of `slot`. A worker that later dies is restarted; so is one whose restart
  // fails, after a pause. `on_started` (may be empty) hears how the first start went.
  void start_worker(int slot, std::function<void(Status)> on_started);
  void restart_later(int slot, std::chrono::milliseconds delay);
  void dispatch();
  void record(const ExecutionResult& result);

  Isolation isolation_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;

  // Touched only on the io thread.
  std::vector<std::shared_ptr<ForkServer>> workers_;   // by slot: ready workers; null while (re)starting
  std::vector<std::shared_ptr<ForkServer>> starting_;  // by slot: a worker not ready yet
  std::deque<Pending> queue_;
  bool stopping_ = false;

  // Read from any thread; written on the io thread.
  std::atomic<size_t> queue_depth_{0};
  std::atomic<size_t> running_{0};
  mutable std::mutex metrics_mutex_;
  ExecutorMetrics counters_;               // guarded by metrics_mutex_ (percentiles unused)
  std::vector<std::array<double, 2>> samples_;  // (queue_ms, wall_ms) ring, guarded by metrics_mutex_
  size_t next_sample_ = 0;                  // guarded by metrics_mutex_

  std::thread thread_;  // runs io_; last member so it starts after everything it uses exists
};

}  // namespace torl::sandbox
