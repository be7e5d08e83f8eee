// SIGINT and SIGTERM as a request to stop cleanly, for long-running commands (torl train): while a
// StopSignals lives, the first such signal calls `on_signal(signal)` on a thread of its own (not in
// the signal handler, so the callback may lock and notify). SIGINT's default action is then put back,
// so that a second Ctrl-C ends the process at once; a second SIGTERM is ignored (it often comes twice:
// to the process group and passed on by a launcher; SIGKILL insists). With `every_signal`, every such
// signal calls `on_signal` (a parent that passes signals on to its children). One at a time per process
// (checked); construct and destroy it on one thread. Its pipe is close-on-exec.
#pragma once

#include <functional>
#include <thread>

namespace torl::tools {

class StopSignals {
 public:
  explicit StopSignals(std::function<void(int)> on_signal, bool every_signal = false);
  // Restores the previous handlers and joins the thread (the callback is not called after this).
  ~StopSignals();

  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  std::thread watcher_;
};

}  // namespace torl::tools
