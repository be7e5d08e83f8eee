// One process's part of a training run (torl train; DESIGN.md §1, §6, §10), from a loaded config to
// its end: the checks and the --resume state, the models on their devices (the learner's, the
// generators' by rollout.placement), the trainer and its data-parallel group, the sandbox, the
// rollout pipeline and the learner actor, the evals, the metrics files, the HTTP endpoint and the
// trace; a TrainingRun (training_run.hpp) decides when each step's prompts go in and when the run ends.
// Each step appends one line to RUN/metrics.jsonl and writes one on `log`; every
// train.checkpoint_every steps (and at the end) a checkpoint; at the end the before/after table, the
// plot and summary.json. The command-line layer (tools/train_command.cpp) reads the arguments, turns
// signals into request_stop and maps the outcome to an exit code.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>

#include "actors/run_setup.hpp"
#include "actors/training_run.hpp"
#include "config/config.hpp"
#include "model/data_parallel.hpp"
#include "model/generation_engine.hpp"
#include "model/memory_plan.hpp"
#include "model/qwen2.hpp"

namespace torl::actors {

// What a test may inject into a run: a crash, a stop or a fault at a chosen step. Production runs set
// none (tests/tools/torl_hooked.cpp is a torl that sets them).
struct TrainingHooks {
  // Called on the learner's thread after step N's metrics line (and its checkpoint when one was due). It
  // may raise a signal, throw (the learner fails), or call wait_for_stop(limit), which returns once this
  // process was asked to stop or after the limit.
  std::function<void(int64_t step, const std::function<void(std::chrono::seconds)>& wait_for_stop)> after_step;
  // Wraps the generator's model (e.g. in one whose Nth forward throws); the result must outlive the run.
  std::function<std::unique_ptr<model::CausalLm>(model::CausalLm&)> wrap_generator_model;
};

struct TrainingJobOptions {
  config::Config config;
  std::string config_file;    // recorded in each checkpoint's state
  bool resume = false;        // continue from the run folder's newest checkpoint
  model::RankPlacement rank;  // from the launcher's environment (model::rank_placement)
  TrainingHooks hooks;
};

// What --plan counts for this config on a model of this shape (per learner process).
model::MemoryPlanInput memory_plan_input(const config::Config& config, const model::Qwen2Config& shape);

class TrainingJob {
 public:
  // Any thread, also before or while run() runs: no new step starts; the run ends after the update in
  // flight with a checkpoint. `signal`: SIGINT or SIGTERM, named in the messages.
  void request_stop(int signal);

  // The run, on this thread (the actors have theirs): progress, warnings and errors on `log` (each
  // "torl train: ..." or a step line), the end summary on `out`. Once per job.
  JobOutcome run(const TrainingJobOptions& options, std::ostream& out, std::ostream& log);

 private:
  std::mutex mutex_;
  int early_signal_ = 0;            // guarded: a stop asked for, also before the run existed
  TrainingRun* control_ = nullptr;  // guarded: the run while it exists
};

}  // namespace torl::actors
