#include "sandbox/execution_result.hpp"

namespace torl::sandbox {

const char* status_name(ExecutionStatus status) {
  for (const auto& [value, name] : enum_names(ExecutionStatus{})) {
    if (value == status) return name;
  }
  return "unknown";
}

ExecutionResult sandbox_error(std::string message) {
  ExecutionResult result;
  result.status = ExecutionStatus::kSandboxError;
  result.stderr_text = std::move(message);
  return result;
}

}  // namespace torl::sandbox
