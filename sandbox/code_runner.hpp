// CodeRunner: what the rest of torl needs from a sandbox backend: hand over a Python snippet, hear
// back exactly one ExecutionResult. Implemented by the local worker pool (Executor) and by the
// SandboxFusion HTTP client; tests and benchmarks pass scripted runners.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "common/status.hpp"
#include "config/config.hpp"
#include "sandbox/execution_result.hpp"

namespace torl::sandbox {

class CodeRunner {
 public:
  using Done = std::function<void(ExecutionResult)>;
  virtual ~CodeRunner() = default;

  // Queues `code`; `done` runs exactly once, on a thread of the runner, and must not block. Never
  // throws: a snippet the runner cannot take ends as kSandboxError. May be called from any thread.
  virtual void submit(std::string code, Done done) = 0;

  // Snippets submitted and not yet started (waiting for a worker or a connection), now; for the
  // run's /metrics. Any thread. 0 where a runner cannot tell.
  virtual size_t queue_depth() const { return 0; }
};

// The backend named by tool.backend (local worker pool, or a SandboxFusion cluster), started and
// ready, or why it could not start.
Expected<std::unique_ptr<CodeRunner>> start_code_runner(const config::ToolConfig& tool);

}  // namespace torl::sandbox
