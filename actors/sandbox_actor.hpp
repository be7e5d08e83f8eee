// sandbox_actor: the Sandbox role over a sandbox::CodeRunner (the local worker pool, a SandboxFusion
// cluster, or a scripted runner in tests). Each exec request gets a response promise; the runner's
// callback (on the runner's thread) comes back as an exec_done message, and the promise is kept on
// the actor's own thread. Every request ends with exactly one result, because every runner ends every
// snippet with one; the requester's timeout covers a runner that is late.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "actors/messages.hpp"
#include "actors/trace.hpp"
#include "sandbox/code_runner.hpp"

namespace torl::actors {

struct SandboxSetup {
  sandbox::CodeRunner* runner = nullptr;  // outlives the actor
  TraceRecorder* trace = nullptr;         // may be null
};

struct SandboxState {
  static inline const char* name = "sandbox";
  // Where runner callbacks send their results; closed when the actor exits, so that a late callback
  // neither reaches a dead actor nor keeps it alive.
  struct Inbox {
    std::mutex mutex;
    SandboxApi actor;  // guarded by mutex; null once closed
  };
  SandboxSetup setup;
  std::shared_ptr<Inbox> inbox = std::make_shared<Inbox>();
  uint64_t next_ticket = 0;
  std::unordered_map<uint64_t, caf::typed_response_promise<sandbox::ExecutionResult>> waiting;
};

SandboxApi::behavior_type sandbox_actor(SandboxApi::stateful_pointer<SandboxState> self, SandboxSetup setup);

}  // namespace torl::actors
