#include "sandbox/executor.hpp"

#include <algorithm>
#include <future>

#include "common/log.hpp"
#include "common/stats.hpp"
#include "sandbox/fork_server.hpp"

namespace torl::sandbox {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kLatencySamples = 8192;
constexpr auto kRestartDelay = std::chrono::milliseconds(500);

}  // namespace

uint64_t ExecutorMetrics::executions() const {
  uint64_t total = 0;
  for (const uint64_t count : executions_by_status) total += count;
  return total;
}

Executor::Executor(Isolation isolation)
    : isolation_(std::move(isolation)), work_(asio::make_work_guard(io_)), thread_([this] { io_.run(); }) {}

Expected<std::unique_ptr<Executor>> Executor::start(const config::ToolConfig& tool) {
  auto isolation = Isolation::create(tool);
  if (!isolation) return isolation.status().with_context("starting the sandbox");
  std::unique_ptr<Executor> executor(new Executor(std::move(isolation).value()));

  const int count = tool.workers;
  auto results = std::make_shared<std::promise<Status>>();
  auto remaining = std::make_shared<int>(count);
  auto first_error = std::make_shared<Status>();
  asio::post(executor->io_, [&executor = *executor, count, results, remaining, first_error] {
    executor.workers_.resize(static_cast<size_t>(count));
    executor.starting_.resize(static_cast<size_t>(count));
    for (int slot = 0; slot < count; ++slot) {
      executor.start_worker(slot, [results, remaining, first_error](Status status) {
        if (!status.ok() && first_error->ok()) *first_error = status;
        if (--*remaining == 0) results->set_value(*first_error);
      });
    }
  });
  const Status started = results->get_future().get();
  if (!started.ok()) return started;
  TORL_LOG(kDebug) << "sandbox: " << count << " workers ready";
  return executor;
}

Executor::~Executor() {
  // Everything queued or running ends with kSandboxError before the io thread stops.
  std::promise<void> stopped;
  asio::post(io_, [this, &stopped] {
    stopping_ = true;
    std::deque<Pending> queue = std::move(queue_);
    for (auto& pending : queue) pending.done(sandbox_error("sandbox: shutting down"));
    for (auto* group : {&workers_, &starting_}) {
      for (auto& worker : *group) {
        if (worker) worker->shutdown();
      }
      group->clear();
    }
    stopped.set_value();
  });
  stopped.get_future().wait();
  work_.reset();
  io_.stop();
  if (thread_.joinable()) thread_.join();
}

void Executor::start_worker(int slot, std::function<void(Status)> on_started) {
  auto worker = std::make_shared<ForkServer>(io_, isolation_, slot);
  starting_[static_cast<size_t>(slot)] = worker;
  // The callback is stored in the worker, so it holds the worker weakly.
  auto on_ready = [this, slot, weak = std::weak_ptr<ForkServer>(worker),
                   on_started = std::move(on_started)](Status status) {
    if (stopping_) return;
    starting_[static_cast<size_t>(slot)] = nullptr;
    if (status.ok()) {
      workers_[static_cast<size_t>(slot)] = weak.lock();
      dispatch();
    } else if (!on_started) {
      // A restart failed: no worker may be left, so fail what waits instead of hanging it.
      TORL_LOG(kError) << status.message();
      if (std::none_of(workers_.begin(), workers_.end(), [](const auto& w) { return w != nullptr; })) {
        std::deque<Pending> queue = std::move(queue_);
        queue_depth_ = 0;
        for (auto& pending : queue) pending.done(sandbox_error("sandbox: no worker can start: " + status.message()));
      }
      restart_later(slot, std::chrono::seconds(5));
    }
    if (on_started) on_started(status);
  };
  // A worker is idle again once it has cleared up after a snippet (after that snippet's result). The
  // next one is dispatched through the queue, so that the worker's own handler returns first.
  auto on_idle = [this] {
    asio::post(io_, [this] {
      if (!stopping_) dispatch();
    });
  };
  auto on_exit = [this, slot] {
    if (stopping_) return;
    // The worker died (killed by its snippet, crashed, or wedged): replace it.
    workers_[static_cast<size_t>(slot)] = nullptr;
    {
      std::lock_guard lock(metrics_mutex_);
      ++counters_.worker_restarts;
    }
    restart_later(slot, kRestartDelay);
  };
  worker->start(std::move(on_ready), std::move(on_idle), std::move(on_exit));
}

void Executor::restart_later(int slot, std::chrono::milliseconds delay) {
  auto timer = std::make_shared<asio::steady_timer>(io_, delay);
  timer->async_wait([this, slot, timer](boost::system::error_code ec) {
    if (!ec && !stopping_) start_worker(slot, nullptr);
  });
}

RunRequest capped_by(RunRequest request, const config::ToolConfig& tool) {
  if (request.timeout_ms <= 0 || request.timeout_ms > tool.timeout_ms) request.timeout_ms = tool.timeout_ms;
  if (request.memory_mb <= 0 || request.memory_mb > tool.memory_mb) request.memory_mb = tool.memory_mb;
  return request;
}

void Executor::submit(std::string code, Done done) {
  RunRequest request;
  request.code = std::move(code);
  submit(std::move(request), std::move(done));
}

void Executor::submit(RunRequest request, Done done) {
  request = capped_by(std::move(request), tool());
  asio::post(io_, [this, request = std::move(request), done = std::move(done)]() mutable {
    if (stopping_) return done(sandbox_error("sandbox: shutting down"));
    if (queue_.size() >= static_cast<size_t>(tool().max_queue)) {
      ExecutionResult result = sandbox_error("sandbox: queue full (tool.max_queue = " +
                                             std::to_string(tool().max_queue) + "); try again later");
      record(result);
      return done(std::move(result));
    }
    queue_.push_back({std::move(request), std::move(done), Clock::now()});
    queue_depth_ = queue_.size();
    dispatch();
  });
}

void Executor::dispatch() {
  for (auto& worker : workers_) {
    if (queue_.empty()) break;
    if (!worker || !worker->idle()) continue;
    Pending& pending = queue_.front();
    const double queue_ms = std::chrono::duration<double, std::milli>(Clock::now() - pending.queued_at).count();
    auto original = std::make_shared<Done>(std::move(pending.done));
    Done done = [this, queue_ms, original](ExecutionResult result) {
      result.queue_ms = queue_ms;
      --running_;
      record(result);
      (*original)(std::move(result));  // the worker takes the next snippet once idle: on_idle
    };
    if (!worker->run(pending.request, done)) {
      pending.done = std::move(*original);  // a dying worker: the snippet stays first in line
      continue;
    }
    queue_.pop_front();
    queue_depth_ = queue_.size();
    ++running_;
  }
}

void Executor::record(const ExecutionResult& result) {
  std::lock_guard lock(metrics_mutex_);
  ++counters_.executions_by_status[static_cast<size_t>(result.status)];
  if (samples_.size() < kLatencySamples) {
    samples_.push_back({result.queue_ms, result.wall_ms});
  } else {
    samples_[next_sample_] = {result.queue_ms, result.wall_ms};
    next_sample_ = (next_sample_ + 1) % kLatencySamples;
  }
}

ExecutionResult Executor::run(std::string code) {
  std::promise<ExecutionResult> promise;
  auto future = promise.get_future();
  submit(std::move(code), [&promise](ExecutionResult result) { promise.set_value(std::move(result)); });
  return future.get();
}

RunnerLoad Executor::load() const {
  const ExecutorMetrics now = metrics();
  RunnerLoad load;
  load.workers = tool().workers;
  load.running = now.running;
  load.queued = now.queue_depth;
  load.executions = now.executions();
  load.latency_p50_ms = now.total_p50_ms;
  load.latency_p99_ms = now.total_p99_ms;
  load.max_queue = static_cast<size_t>(tool().max_queue);
  load.timeout_ms = tool().timeout_ms;
  load.memory_mb = tool().memory_mb;
  return load;
}

ExecutorMetrics Executor::metrics() const {
  ExecutorMetrics snapshot;
  std::vector<double> queue, run, total;
  {
    std::lock_guard lock(metrics_mutex_);
    snapshot = counters_;
    for (const auto& [queue_ms, wall_ms] : samples_) {
      queue.push_back(queue_ms);
      run.push_back(wall_ms);
      total.push_back(queue_ms + wall_ms);
    }
  }
  snapshot.queue_depth = queue_depth_;
  snapshot.running = running_;
  snapshot.queue_p50_ms = percentile(queue, 0.50);
  snapshot.queue_p99_ms = percentile(queue, 0.99);
  snapshot.run_p50_ms = percentile(run, 0.50);
  snapshot.run_p99_ms = percentile(run, 0.99);
  snapshot.total_p50_ms = percentile(total, 0.50);
  snapshot.total_p90_ms = percentile(total, 0.90);
  snapshot.total_p99_ms = percentile(total, 0.99);
  return snapshot;
}

}  // namespace torl::sandbox
