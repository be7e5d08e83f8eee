// The training data stream: which problems each step samples, in an order fixed by run.seed alone, so
// that a resumed run sees exactly the prompts an uninterrupted one would (no prompt skipped or
// repeated). Epoch e is a permutation of the problems (SplitMix64 Fisher-Yates, the same on every
// machine; identity when data.shuffle is off); step k takes positions [k*P, (k+1)*P) of the epochs laid
// end to end, P = rollout.prompts_per_step. Each problem becomes rollout.samples_per_prompt jobs (one
// GRPO group) with ids and seeds that depend only on (step, position, sample). Pure; any thread.
#pragma once

#include <cstdint>
#include <vector>

#include "actors/dataset.hpp"
#include "actors/trajectory.hpp"
#include "config/config.hpp"
#include "model/tokenizer.hpp"

namespace torl::actors {

class TrainData {
 public:
  // Loads every file of data.train_files and tokenizes the prompts; problems whose prompt is longer
  // than data.max_prompt_tokens are left out (skipped() says how many). Errors name FILE:LINE and the
  // key; no usable problem at all is an error too.
  static Expected<TrainData> load(const config::Config& config, const model::Tokenizer& tokenizer);

  // Problem indices (into problems()) of step `step`'s groups.
  std::vector<int64_t> problems_of_step(int64_t step) const;
  // The step's jobs: prompts_per_step groups of samples_per_prompt jobs, group by group. Job ids are
  // step * P * n + group * n + sample, unique in the run. With data parallelism, rank r of `world`
  // takes the groups g with g % world == r (ids, seeds and prompts as in one process).
  std::vector<RolloutJob> jobs_of_step(int64_t step, int rank = 0, int world = 1) const;

  const std::vector<Problem>& problems() const { return problems_; }
  int64_t skipped() const { return skipped_; }

 private:
  std::vector<int64_t> epoch_order(int64_t epoch) const;

  std::vector<Problem> problems_;
  std::vector<std::vector<int32_t>> prompts_;  // by problem
  int64_t skipped_ = 0;
  uint64_t seed_ = 0;
  bool shuffle_ = true;
  int prompts_per_step_ = 1, samples_ = 1;
  model::SamplingParams sampling_;
};

}  // namespace torl::actors
