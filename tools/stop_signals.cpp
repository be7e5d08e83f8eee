#include "tools/stop_signals.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>

#include "common/check.hpp"

namespace torl::tools {
namespace {

// The handler only writes the signal number into a pipe (async-signal-safe); the watcher thread reads
// it. A 0 byte from the destructor ends the watcher.
int g_pipe[2] = {-1, -1};
std::atomic<bool> g_active{false};
std::atomic<bool> g_every_signal{false};
struct sigaction g_previous[2];
constexpr int kSignals[2] = {SIGINT, SIGTERM};

extern "C" void on_stop_signal(int signal) {
  const int saved = errno;
  const unsigned char byte = static_cast<unsigned char>(signal);
  [[maybe_unused]] const ssize_t n = ::write(g_pipe[1], &byte, 1);
  // A second Ctrl-C ends the process at once. A second SIGTERM changes nothing: supervisors and
  // launchers often deliver it twice (to the process group and passed on), and SIGKILL is the way to
  // insist.
  if (!g_every_signal && signal == SIGINT) ::signal(signal, SIG_DFL);
  errno = saved;
}

}  // namespace

StopSignals::StopSignals(std::function<void(int)> on_signal, bool every_signal) {
  TORL_CHECK(!g_active.exchange(true), "StopSignals: only one at a time");
  TORL_CHECK(::pipe2(g_pipe, O_CLOEXEC) == 0, "StopSignals: pipe failed");
  g_every_signal = every_signal;
  watcher_ = std::thread([on_signal = std::move(on_signal)] {
    unsigned char byte = 0;
    while (true) {
      const ssize_t n = ::read(g_pipe[0], &byte, 1);
      if (n < 0 && errno == EINTR) continue;
      if (n != 1 || byte == 0) return;
      on_signal(byte);
    }
  });
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (int i = 0; i < 2; ++i) ::sigaction(kSignals[i], &action, &g_previous[i]);
}

StopSignals::~StopSignals() {
  for (int i = 0; i < 2; ++i) ::sigaction(kSignals[i], &g_previous[i], nullptr);
  const unsigned char stop = 0;
  [[maybe_unused]] const ssize_t n = ::write(g_pipe[1], &stop, 1);
  watcher_.join();
  ::close(g_pipe[0]);
  ::close(g_pipe[1]);
  g_active = false;
}

}  // namespace torl::tools
