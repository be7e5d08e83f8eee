#include "sandbox/fresh_interpreter.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

namespace torl::sandbox {
namespace {

// Applies the snippet limits (argv[1]) to this interpreter, then runs the code (argv[2]) as
// `python3 -c` would; the same limits as the fork server's children, set the same way.
constexpr const char* kPrologue = R"py(import json, resource, sys
_limits = json.loads(sys.argv[1])
if _limits["rlimits"]:
    for _which, _value in ((resource.RLIMIT_AS, _limits["memory_mb"] << 20),
                           (resource.RLIMIT_CPU, _limits["cpu_seconds"]),
                           (resource.RLIMIT_FSIZE, _limits["file_mb"] << 20),
                           (resource.RLIMIT_NPROC, _limits["max_processes"]),
                           (resource.RLIMIT_CORE, 0)):
        resource.setrlimit(_which, (_value, _value))
_code = sys.argv[2]
sys.argv = ["-c"]
del json, resource, _limits, _which, _value
exec(compile(_code, "<string>", "exec"))
)py";

}  // namespace

ExecutionResult run_in_fresh_interpreter(const Isolation& isolation, const std::string& code) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto& tool = isolation.tool();
  ExecutionResult result;

  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0) return sandbox_error(std::string("pipe: ") + std::strerror(errno));
  if (pipe2(err, O_CLOEXEC) != 0) {
    close(out[0]);
    close(out[1]);
    return sandbox_error(std::string("pipe: ") + std::strerror(errno));
  }
  auto spawned = isolation.spawn({tool.python.string(), "-I", "-c", kPrologue, isolation.snippet_limits().dump(), code},
                                 {{1, out[1]}, {2, err[1]}});
  close(out[1]);
  close(err[1]);
  if (!spawned) {
    close(out[0]);
    close(err[0]);
    return sandbox_error(spawned.status().message());
  }

  // Read both pipes until they close, the cap is hit, or the deadline passes.
  const auto deadline = start + std::chrono::milliseconds(tool.timeout_ms);
  const size_t cap = static_cast<size_t>(tool.max_output_bytes);
  bool timed_out = false, overflowed = false;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  std::string* texts[2] = {&result.stdout_text, &result.stderr_text};
  char chunk[65536];
  while ((fds[0].fd >= 0 || fds[1].fd >= 0) && !overflowed) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    if (poll(fds, 2, static_cast<int>(left)) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t n = read(fds[i].fd, chunk, sizeof chunk);
      if (n <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        continue;
      }
      const size_t room = cap - std::min(cap, texts[i]->size());
      texts[i]->append(chunk, std::min(static_cast<size_t>(n), room));
      if (static_cast<size_t>(n) > room) overflowed = result.truncated = true;
    }
  }
  for (auto& fd : fds) {
    if (fd.fd >= 0) close(fd.fd);
  }
  // The pipes may close long before the process ends (it can close them itself): the deadline
  // holds for its exit too. Killing bubblewrap's outer process takes the whole sandbox with it.
  if (!timed_out && !overflowed) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    pollfd exit_fd{spawned->pidfd, POLLIN, 0};
    timed_out = left <= 0 || poll(&exit_fd, 1, static_cast<int>(left)) <= 0;
  }
  if (timed_out || overflowed) kill(spawned->pid, SIGKILL);
  int status = 0;
  waitpid(spawned->pid, &status, 0);
  close(spawned->pidfd);

  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  if (isolation.tool().isolation.bubblewrap && result.exit_code > 128 && !timed_out && !overflowed) {
    result.signal = result.exit_code - 128;  // bubblewrap reports a child killed by signal N as 128 + N
    result.exit_code = -1;
  }
  if (overflowed) {
    result.status = ExecutionStatus::kOutputLimit;
  } else if (timed_out) {
    result.status = ExecutionStatus::kTimeout;
  } else if (result.signal == SIGXCPU) {
    result.status = ExecutionStatus::kTimeout;
  } else if (result.signal != 0) {
    result.status = ExecutionStatus::kKilled;
  } else {
    result.status = result.exit_code == 0 ? ExecutionStatus::kOk : ExecutionStatus::kError;
  }
  result.wall_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  return result;
}

}  // namespace torl::sandbox
