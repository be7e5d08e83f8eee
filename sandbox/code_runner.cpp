#include "sandbox/code_runner.hpp"

#include "sandbox/executor.hpp"
#include "sandbox/sandbox_fusion_client.hpp"

namespace torl::sandbox {

void CodeRunner::submit(RunRequest request, Done done) {
  if (request.only_code()) return submit(std::move(request.code), std::move(done));
  done(sandbox_error("this sandbox backend runs plain code only: stdin, files, fetch_files and per-request "
                     "limits need the local pool (tool.backend: local)"));
}

RunnerLoad CodeRunner::load() const {
  RunnerLoad load;
  load.queued = queue_depth();
  return load;
}

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
