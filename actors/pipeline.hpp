// The rollout pipeline of DESIGN.md §1: one driver, one generator per model, one interceptor, one
// sandbox and one reward actor, wired so that decoding continues while code runs. Pipeline spawns
// them on a caller's actor system (tests pass one with CAF's deterministic scheduler);
// run_rollouts() is the blocking entry point for commands: jobs in, scored trajectories out.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include <caf/all.hpp>

#include "actors/faults.hpp"
#include "actors/messages.hpp"
#include "actors/metrics.hpp"
#include "actors/trace.hpp"
#include "config/config.hpp"
#include "model/generation_engine.hpp"
#include "model/qwen2.hpp"
#include "model/qwen2_causal_lm.hpp"
#include "sandbox/code_runner.hpp"

namespace torl::actors {

// What a pipeline runs on. Pointers are borrowed and must outlive the pipeline.
struct PipelineSetup {
  config::RolloutConfig rollout;
  config::ToolConfig tool;
  config::RewardConfig reward;
  const model::Tokenizer* tokenizer = nullptr;
  std::vector<model::CausalLm*> models;  // one generator each; each used only on its generator's thread
  std::vector<model::Qwen2Model*> weights;  // training: the weights under each model, updated by the learner
  std::vector<int64_t> eos_ids;
  sandbox::CodeRunner* runner = nullptr;
  PipelineMetrics* metrics = nullptr;    // sized for models.size() generators
  TraceRecorder* trace = nullptr;        // may be null
  bool detached = true;                  // generators and reward on their own threads (off under the test scheduler)
  int32_t policy_version = 0;            // training: the optimizer steps behind `weights` (a resumed run's step)
  FaultHandler on_fault;                 // an actor died of an exception (see faults.hpp)
};

// KV cache rows a generator needs: the decode batch (rollout.max_batch) and, in async mode with tool
// calls, room for sequences paused at a call (up to min(tool.max_pending, max_batch)), so that a
// sequence waiting on code does not shrink the decode batch: its slot is refilled by a new prompt.
// Rounds mode keeps ToRL's fixed batch.
int64_t generator_slots(const config::RolloutConfig& rollout, const config::ToolConfig& tool);

// A generator's model with its KV cache for these settings (generator_slots rows of
// data.max_prompt_tokens + rollout.max_response_tokens + 1 tokens), checked against the model's
// positions and the machine's memory; an error names the settings that sized it.
Expected<std::unique_ptr<model::Qwen2CausalLm>> create_generator_model(const model::Qwen2Model& model,
                                                                      const config::Config& config);

// How long the interceptor waits for one execution: every call that may be queued ahead of it, plus
// its own run, plus a margin. Past it the call ends as a sandbox_error observation.
std::chrono::milliseconds sandbox_request_timeout(const config::ToolConfig& tool, int generators);

class Pipeline {
 public:
  // Spawns the actors. `on_finished` hears every finished trajectory, scored or with its error, on
  // the driver's thread; it must not block.
  Pipeline(caf::actor_system& system, const PipelineSetup& setup, std::function<void(Trajectory)> on_finished);
  // Tells every actor to exit (work in flight is dropped; its trajectories are not reported).
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Queues more jobs; generators take them as they have room. Any thread.
  void submit(std::vector<RolloutJob> jobs);

  const DriverApi& driver() const { return driver_; }
  const InterceptorApi& interceptor() const { return interceptor_; }
  const std::vector<GeneratorApi>& generators() const { return generators_; }

 private:
  DriverApi driver_;
  SandboxApi sandbox_;
  RewardApi reward_;
  InterceptorApi interceptor_;
  std::vector<GeneratorApi> generators_;
};

// Runs `jobs` to the end on a fresh actor system and returns their trajectories in job order.
// `progress` (may be empty) hears each finished trajectory, on the driver's thread. Errors: an actor
// died of an exception ("the generator-0 actor failed: ..."); setup.on_fault hears it too.
Expected<std::vector<Trajectory>> run_rollouts(const PipelineSetup& setup, std::vector<RolloutJob> jobs,
                                     const std::function<void(const Trajectory&)>& progress = {});

}  // namespace torl::actors
