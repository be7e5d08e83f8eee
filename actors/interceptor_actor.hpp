// interceptor_actor: applies the tool protocol (ToolLoop) to every live trajectory. It hears each
// generator's begins and segments, sends code to the sandbox (a request with a timeout: a failed or
// late sandbox becomes a sandbox_error result, never a lost sample; the model is shown "UnknownError"
// and the cause is logged), resumes or releases the
// sequence on the generator that holds it, and has finished trajectories scored before they go to
// the driver. Cheap work only; runs on CAF's shared threads.
#pragma once

#include <chrono>
#include <string>
#include <unordered_map>

#include "actors/messages.hpp"
#include "actors/metrics.hpp"
#include "actors/tool_loop.hpp"
#include "actors/trace.hpp"

namespace torl::actors {

struct InterceptorSetup {
  ToolRules rules;
  const model::Tokenizer* tokenizer = nullptr;
  SandboxApi sandbox;
  RewardApi reward;
  DriverApi driver;
  std::chrono::milliseconds sandbox_timeout{60000};  // per execution request, queue wait included
  std::chrono::milliseconds reward_timeout{60000};
  PipelineMetrics* metrics = nullptr;
  TraceRecorder* trace = nullptr;  // may be null
};

struct InterceptorState {
  static inline const char* name = "interceptor";
  struct Live {
    Trajectory trajectory;
    GeneratorApi generator;   // holds the sequence
    std::string generator_label;
  };
  InterceptorSetup setup;
  std::unique_ptr<ToolLoop> loop;
  std::unordered_map<int64_t, Live> live;  // by trajectory id
  uint64_t sandbox_faults = 0;             // calls that ended as sandbox_error
};

InterceptorApi::behavior_type interceptor_actor(InterceptorApi::stateful_pointer<InterceptorState> self,
                                                InterceptorSetup setup);

}  // namespace torl::actors
