// Isolation: how a sandboxed process is started. Resolved once from the tool config (which layers are
// on, the seccomp program, the uid), then used to spawn worker processes (fork_server.hpp) and, for
// the benchmark baseline, one fresh interpreter per call. Immutable after create(); spawn() may be
// called from any thread.
//
// The layers, each on by default (config `tool.isolation`):
//   bubblewrap  new user, PID, network, IPC and UTS namespaces; /usr read-only, no host files, a
//               private size-limited /tmp, a cleared environment, killed when torl dies
//   uid         when torl runs as root, the sandbox runs as an unprivileged uid (65534)
//   seccomp     no sockets but AF_UNIX, no ptrace, mount, namespaces, module loading, bpf, io_uring...
//   rlimits     address space, CPU time, file size and process count, set per snippet
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "common/json.hpp"
#include "common/status.hpp"
#include "config/config.hpp"

namespace torl::sandbox {

// A process started by spawn(). The caller owns `pidfd` (readable once the process has exited) and
// must reap `pid`.
struct SpawnedProcess {
  pid_t pid = -1;
  int pidfd = -1;
};

class Isolation {
 public:
  // Checks that this machine can provide every layer that is switched on (bubblewrap installed and
  // able to create namespaces, the interpreter inside /usr, seccomp available) and logs a warning for
  // each layer that is switched off.
  static Expected<Isolation> create(const config::ToolConfig& tool);

  // Starts `command` (argv as seen inside the sandbox) with `fds`: each (target, source) pair puts a
  // duplicate of our `source` at `target` in the child; stdin is /dev/null unless mapped, and every
  // other descriptor is closed. rlimits are not applied here: the Python inside applies them to the
  // snippet (see snippet_limits), so that bubblewrap's own processes do not count against them.
  Expected<SpawnedProcess> spawn(const std::vector<std::string>& command,
                                 const std::vector<std::pair<int, int>>& fds) const;

  // The snippet limits for the Python side: memory_mb, cpu_seconds, file_mb, max_processes, and
  // rlimits (whether to apply them).
  Json snippet_limits() const;

  // Where snippets run: /tmp inside bubblewrap; without it, `host_workdir` (a private folder).
  std::string workdir(const std::string& host_workdir) const;

  // Without bubblewrap, each worker needs a private folder on the host for its snippets: makes one
  // under the system temp folder, owned by the sandbox uid. The caller removes it.
  Expected<std::string> make_host_workdir() const;

  // Whether the sandbox has its own PID namespace, so that "every process but us" is safe to kill.
  bool pid_namespace() const { return tool_.isolation.bubblewrap; }

  const config::ToolConfig& tool() const { return tool_; }

  // CPU seconds a snippet may use: its wall-clock timeout rounded up, plus one.
  int cpu_seconds() const { return cpu_seconds_for(tool_.timeout_ms); }
  static int cpu_seconds_for(int timeout_ms) { return (timeout_ms + 999) / 1000 + 1; }

 private:
  explicit Isolation(config::ToolConfig tool) : tool_(std::move(tool)) {}

  std::vector<std::string> bubblewrap_arguments() const;

  config::ToolConfig tool_;
  std::string seccomp_program_;  // BPF instructions (struct sock_filter[]), empty when seccomp is off
  int run_as_uid_ = -1;          // -1: keep torl's uid
};

}  // namespace torl::sandbox
