// The baseline that the fork-server pool is measured against: one fresh `python3 -I -c CODE` process
// per call, under the same isolation (bubblewrap, uid, seccomp, rlimits), as a sandbox that starts an
// interpreter per request does. Used by `torl sandbox bench`; blocking, safe from any thread.
#pragma once

#include <string>

#include "sandbox/execution_result.hpp"
#include "sandbox/isolation.hpp"

namespace torl::sandbox {

// Runs `code` in a new interpreter and waits for it (at most tool.timeout_ms, then it is killed).
ExecutionResult run_in_fresh_interpreter(const Isolation& isolation, const std::string& code);

}  // namespace torl::sandbox
