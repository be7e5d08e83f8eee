#include "sandbox/execution_result.hpp"

namespace torl::sandbox {

const char* status_name(ExecutionStatus status) {
  for (const auto& [value, name] : enum_names(ExecutionStatus{})) {
    if (value == status) return name;
  }
  return "unknown";
}

}  // namespace torl::sandbox
