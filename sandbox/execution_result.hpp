// ExecutionResult: what became of one Python snippet. Task outcomes are data, not errors: code that
// raises, loops, floods its output or kills its sandbox ends here with a status, never as a Status or
// an exception. Plain value type; safe to copy between threads.
#pragma once

#include <array>
#include <map>
#include <string>
#include <utility>

namespace torl::sandbox {

enum class ExecutionStatus {
  kOk,            // exited with code 0
  kError,         // exited with a non-zero code (an uncaught exception, sys.exit(1), ...)
  kTimeout,       // ran past tool.timeout_ms and was killed with everything it started
  kMemory,        // hit the address-space limit (MemoryError, or killed while allocating)
  kOutputLimit,   // wrote more than tool.max_output_bytes to stdout or stderr and was killed
  kKilled,        // ended by a signal it did not get from us (SIGSEGV, SIGABRT, SIGKILL to itself)
  kSandboxError,  // the sandbox failed (worker died, queue full, spawn failed); not the code's fault
};

constexpr auto enum_names(ExecutionStatus) {
  return std::array{std::pair{ExecutionStatus::kOk, "ok"},
                    std::pair{ExecutionStatus::kError, "error"},
                    std::pair{ExecutionStatus::kTimeout, "timeout"},
                    std::pair{ExecutionStatus::kMemory, "memory"},
                    std::pair{ExecutionStatus::kOutputLimit, "output_limit"},
                    std::pair{ExecutionStatus::kKilled, "killed"},
                    std::pair{ExecutionStatus::kSandboxError, "sandbox_error"}};
}

// "ok", "timeout", ...
const char* status_name(ExecutionStatus status);

struct ExecutionResult {
  ExecutionStatus status = ExecutionStatus::kSandboxError;
  int exit_code = -1;         // the process's exit code; -1 when it died by a signal or never ran
  int signal = 0;             // the signal that ended it, 0 if none
  std::string stdout_text;    // raw bytes as written (may be invalid UTF-8), at most max_output_bytes
  std::string stderr_text;    // likewise; for kSandboxError, what went wrong in the sandbox
  bool truncated = false;     // stdout or stderr was cut at max_output_bytes
  // RunRequest::fetch_files found after the run, as regular files inside the working directory:
  // path as asked -> base64 content. Empty unless the request asked for files.
  std::map<std::string, std::string> files;
  double queue_ms = 0;        // waiting for a free worker
  double wall_ms = 0;         // from handing the code to a worker until the result was complete
};

// A result that the sandbox, not the code, is to blame for: status kSandboxError, `message` as stderr.
ExecutionResult sandbox_error(std::string message);

}  // namespace torl::sandbox
