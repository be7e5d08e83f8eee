#include "sandbox/code_runner.hpp"

#include "sandbox/executor.hpp"

namespace torl::sandbox {

Expected<std::unique_ptr<CodeRunner>> start_code_runner(const config::ToolConfig& tool) {
  if (tool.backend == config::ToolBackend::kSandboxFusion) {
    return Status(StatusCode::kUnimplemented, "tool.backend: sandbox_fusion is not built yet (issue #11)");
  }
  auto executor = Executor::start(tool);
  if (!executor) return executor.status();
  return std::unique_ptr<CodeRunner>(std::move(*executor));
}

}  // namespace torl::sandbox
