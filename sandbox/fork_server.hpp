// ForkServer: one sandbox worker, seen from torl. It starts a warm Python process (forkserver.py) in
// the sandbox and runs one snippet at a time in a fresh child of it: it hands over the code and the
// child's stdout/stderr pipes, reads the output up to the cap, enforces the wall-clock timeout, and
// turns what happened into an ExecutionResult. The worker reports a snippet's end at once and clears
// up after it (kills what it left, empties its folders) afterwards: the result goes to the caller
// before the clean-up, and the worker takes the next snippet once it says it is ready again.
//
// Owned by the Executor (executor.hpp) and used only on its io_context thread; all callbacks run
// there. Held by shared_ptr because pending asynchronous operations keep it alive. A worker that
// dies is not restarted here: it reports through `on_exit` and the Executor replaces it.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/asio.hpp"

#include "common/status.hpp"
#include "sandbox/execution_result.hpp"
#include "sandbox/isolation.hpp"
#include "sandbox/run_request.hpp"

namespace torl::sandbox {

class ForkServer : public std::enable_shared_from_this<ForkServer> {
 public:
  using Done = std::function<void(ExecutionResult)>;

  ForkServer(boost::asio::io_context& io, const Isolation& isolation, int slot);
  ~ForkServer();

  // Spawns the worker. `on_started` gets ok once it has its imports loaded and is ready, or the
  // reason it could not start (with the worker's own stderr). `on_idle` is called each time the
  // worker is idle again after a snippet (its clean-up done). `on_exit` is called once if the worker
  // process ends after a successful start, whatever the cause.
  void start(std::function<void(Status)> on_started, std::function<void()> on_idle,
             std::function<void()> on_exit);

  // Runs one snippet under the request's limits (already capped by the Executor; 0 means the tool's);
  // the worker must be idle. Returns false, leaving `done` untouched, when the
  // worker cannot take the code (it is dying): the caller gives the snippet to another worker.
  // Otherwise `done` is moved from and called exactly once, as soon as the snippet has ended; the
  // worker then clears up after it and is not idle until `on_idle`.
  bool run(const RunRequest& request, Done& done);

  // Kills the worker process. A snippet in progress ends with kSandboxError now; no other callback
  // is made after this.
  void shutdown();

  bool idle() const { return state_ == State::kIdle; }
  int slot() const { return slot_; }

 private:
  enum class State {
    kStarting,
    kIdle,
    kBusy,
    kCleaning,  // the snippet's result is out; the worker clears up after it, then says it is ready
    kExiting,  // reported that it is going away; its exit will be reported through on_exit
    kDead,
  };
  struct Call;

  std::string run_message(const RunRequest& request) const;
  void read_diagnostics();
  void read_control();
  void on_control_line(const std::string& line);
  void read_output(const std::shared_ptr<Call>& call, bool is_stdout);
  void write_control(std::string line);  // queued: one write at a time on the socket
  void write_next();
  void request_kill();
  void maybe_finish();
  void finish(ExecutionResult result);  // the caller has set state_ for after the call
  void on_worker_exit();
  void stop();  // kills the process; its exit is then seen through the pidfd
  void reap();  // waits for the killed process
  std::string diagnostics_tail() const;

  boost::asio::io_context& io_;
  const Isolation& isolation_;
  const int slot_;

  // All below: touched only on the io thread.
  State state_ = State::kStarting;
  pid_t pid_ = -1;
  std::string host_workdir_;  // private folder for snippets when bubblewrap is off
  boost::asio::local::stream_protocol::socket control_;
  boost::asio::posix::stream_descriptor process_;      // pidfd: readable when the worker exits
  boost::asio::posix::stream_descriptor diagnostics_;  // the worker's own stderr
  std::string control_buffer_;
  std::deque<std::string> writes_;  // lines waiting for the socket; the front one is being written
  std::string diagnostics_text_;  // the last few KiB of the worker's stderr
  std::array<char, 1024> diagnostics_chunk_;
  boost::asio::steady_timer ready_timer_;  // until it says it is ready: after its start, after a clean-up
  std::function<void(Status)> on_started_;
  std::function<void()> on_idle_;
  std::function<void()> on_exit_;
  std::shared_ptr<Call> call_;  // the snippet in progress, if any; its handlers hold it too
};

}  // namespace torl::sandbox
