#include "sandbox/code_runner.hpp"

#include "sandbox/executor.hpp"
#include "sandbox/sandbox_fusion_client.hpp"

namespace torl::sandbox {

Expected<std::unique_ptr<CodeRunner>> start_code_runner(const config::ToolConfig& tool) {
  if (tool.backend == config::ToolBackend::kSandboxFusion) {
    auto client = SandboxFusionClient::start(tool);
    if (!client) return client.status().with_context("starting the sandbox_fusion client");
    return std::unique_ptr<CodeRunner>(std::move(*client));
  }
  auto executor = Executor::start(tool);
  if (!executor) return executor.status();
  return std::unique_ptr<CodeRunner>(std::move(*executor));
}

}  // namespace torl::sandbox
