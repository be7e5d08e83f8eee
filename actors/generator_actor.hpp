// generator_actor: owns one GenerationEngine (one device's batch of sequence slots) and decodes.
// Each step is one message to itself, so jobs, resumes and releases are handled between steps.
// Spawned detached in real runs: a step blocks for the length of a forward pass.
//
// Continuous batching (rollout.mode: async): at most rollout.max_batch sequences decode at once; the
// model may have more slots (generator_slots), so a sequence paused at a tool call keeps its KV rows
// while a new prompt takes its place in the decode batch.
// Backpressure: a sequence that stops is paused until the interceptor resumes
// or releases it; at most tool.max_pending paused sequences are with the interceptor at a time (the
// others wait here), and while max_pending are paused no new prompt is admitted. In
// rollout.mode: rounds it reproduces ToRL's loop: admit a whole batch, decode until every sequence
// stopped, hand all the stops over at once, and decode again only when all of them are answered.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "actors/messages.hpp"
#include "actors/metrics.hpp"
#include "actors/trace.hpp"
#include "config/config.hpp"
#include "model/generation_engine.hpp"
#include "model/qwen2.hpp"

namespace torl::actors {

struct GeneratorSetup {
  int index = 0;                         // generator-N in traces and metrics
  model::CausalLm* model = nullptr;      // used only on this actor's thread
  model::Qwen2Model* weights = nullptr;  // the weights under `model`, replaced by WeightsUpdates; may be null
  const model::Tokenizer* tokenizer = nullptr;
  std::vector<int64_t> eos_ids;
  std::vector<std::string> stop_strings;  // what a new trajectory starts with
  config::RolloutMode mode = config::RolloutMode::kAsync;
  int64_t max_running = 64;              // rollout.max_batch: sequences decoding at once
  int max_pending = 64;                  // tool.max_pending
  int64_t max_response_tokens = 3072;
  DriverApi driver;
  InterceptorApi interceptor;
  PipelineMetrics* metrics = nullptr;
  TraceRecorder* trace = nullptr;        // may be null
  int32_t first_version = 0;             // the policy version of the weights it starts with
  bool free_cache_when_idle = false;     // rollout.cache_during_update: free
};

struct GeneratorState {
  static inline const char* name = "generator";
  GeneratorSetup setup;
  std::string label;                            // "generator-N"
  std::unique_ptr<model::GenerationEngine> engine;
  std::deque<RolloutJob> queued;                // received, not admitted yet
  int64_t credit_out = 0;                       // jobs asked of the driver, not received yet
  std::unordered_map<int64_t, Segment> open;    // live trajectories: sampled since the last pause
  std::unordered_set<int64_t> paused;           // stopped, waiting for the interceptor
  std::vector<Segment> held;                    // stopped, not handed over yet (limit, or round not over)
  bool step_scheduled = false;
  int32_t version = 0;                          // policy version of the weights in use
};

GeneratorApi::behavior_type generator_actor(GeneratorApi::stateful_pointer<GeneratorState> self, GeneratorSetup setup);

}  // namespace torl::actors
