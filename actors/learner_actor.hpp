// learner_actor: the Learner of DESIGN.md §1. It collects the finished trajectories of each step's
// groups (job ids say the step: id / (prompts_per_step * samples_per_prompt)), and once step k's batch
// is complete computes the group advantages, takes one PolicyTrainer step, and publishes the new
// weights (version k+1) to every generator. Batches of later steps that finish early (max_staleness >
// 0) wait here for their turn; steps are taken strictly in order.
//
// Spawned detached: a step blocks for the length of a forward and backward pass. `on_step` runs on the
// learner's thread right after the step, while nothing else touches the policy, so it may write a
// checkpoint of it.
#pragma once

#include <functional>
#include <map>
#include <vector>

#include "actors/messages.hpp"
#include "config/config.hpp"
#include "model/data_parallel.hpp"
#include "model/policy_trainer.hpp"

namespace torl::actors {

// What one step did, for metrics and checkpoints.
struct StepReport {
  int64_t step = 0;                    // steps done after this one (1 for the first)
  std::vector<Trajectory> trajectories;  // the batch, group by group
  bool updated = false;                // false: no update (every group filtered, or the trainer refused)
  std::string skipped_because;         // when not updated
  model::StepStats stats;
  int64_t groups_equal = 0;            // groups whose rewards were all equal
  int64_t groups_filtered = 0;         // of those, left out (algorithm.filter_equal_groups)
  int64_t infra_failed = 0;            // trajectories the infrastructure failed, left out of the update
  int64_t groups_too_small = 0;        // groups left with fewer than 2 trajectories by that, left out
  int64_t max_staleness = 0;           // the largest step - version of a sampled token in the batch
  double mean_staleness = 0;
  double wait_ms = 0;                  // from the previous step's end until this batch was complete
  double train_ms = 0;                 // the optimizer step
  double publish_ms = 0;               // snapshot of the weights sent to the generators (or the broadcast)
  int64_t peak_device_bytes = -1;      // the most GPU memory held since the run began; -1 on the CPU
};

struct LearnerSetup {
  model::PolicyTrainer* trainer = nullptr;   // owned by the caller; used only on the learner's thread
  model::Qwen2Model* policy = nullptr;       // the trainer's policy
  std::vector<GeneratorApi> generators;      // receive every new version
  // rollout.placement separate: the new versions go to the generators' device through this (whose
  // receiver hands them to the generators) instead of as a snapshot sent to `generators`
  std::shared_ptr<model::WeightBroadcast> broadcast;
  int prompts_per_step = 1, samples_per_prompt = 1;  // of the whole step: job id / (P * n) is its step
  int groups_here = 1;                       // groups of a step this learner trains on (its data-parallel share)
  bool data_parallel = false;                // the trainer has ranks to meet in every step
  config::AlgorithmConfig algorithm;
  // A step where more than this fraction of the trajectories failed in the infrastructure ends the run
  // (train.max_infra_failures); fewer are left out and counted.
  double max_infra_failures = 0.1;
  int64_t first_step = 0;                    // steps already done (a resumed run)
  std::function<void(StepReport&)> on_step;  // on the learner's thread
};

struct LearnerState {
  static inline const char* name = "learner";
  LearnerSetup setup;
  int64_t next_step = 0;                                  // the step whose batch is awaited
  std::map<int64_t, std::vector<Trajectory>> batches;     // by step
  double last_step_end_ms = 0;
};

LearnerApi::behavior_type learner_actor(LearnerApi::stateful_pointer<LearnerState> self, LearnerSetup setup);

// What a batch gives the update.
struct BatchSamples {
  std::vector<model::PolicySample> samples;
  int64_t groups_equal = 0;      // groups whose rewards were all equal
  int64_t groups_filtered = 0;   // of those, left out (algorithm.filter_equal_groups)
  int64_t infra_failed = 0;      // trajectories the infrastructure failed (Trajectory::infra_failure)
  int64_t groups_too_small = 0;  // groups with fewer than 2 trajectories left: no advantage, left out
  std::string first_infra_failure;  // the first such trajectory's id and reason
};

// The policy samples of a batch (group by group, samples_per_prompt each): trajectories that the
// infrastructure failed are left out of their group and counted, then each group's advantages
// (model::group_advantages over the trajectories left, at least 2); equal-reward groups counted and,
// with filter_equal_groups, left out. Trajectories without a response add no sample.
BatchSamples policy_samples(const std::vector<Trajectory>& batch, int samples_per_prompt,
                            const config::AlgorithmConfig& algorithm);

}  // namespace torl::actors
