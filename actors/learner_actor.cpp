#include "actors/learner_actor.hpp"

#include <algorithm>
#include <chrono>

#include "model/grpo.hpp"

namespace torl::actors {
namespace {

using Self = LearnerApi::stateful_pointer<LearnerState>;

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void publish(Self self, int32_t version) {
  LearnerState& s = self->state;
  auto snapshot = std::make_shared<model::TensorMap>();
  {
    torch::NoGradGuard no_grad;
    for (const auto& [name, tensor] : s.setup.policy->named_parameters()) (*snapshot)[name] = tensor.detach().clone();
  }
  const WeightsUpdate update{version, std::move(snapshot)};
  for (const GeneratorApi& generator : s.setup.generators) self->send(generator, weights_atom::value, update);
}

// Takes every step whose batch is complete, in order.
void take_ready_steps(Self self) {
  LearnerState& s = self->state;
  const size_t batch_size = static_cast<size_t>(s.setup.groups_here) * static_cast<size_t>(s.setup.samples_per_prompt);
  for (auto it = s.batches.find(s.next_step); it != s.batches.end() && it->second.size() == batch_size;
       it = s.batches.find(s.next_step)) {
    StepReport report;
    report.step = s.next_step + 1;
    report.trajectories = std::move(it->second);
    s.batches.erase(it);
    std::sort(report.trajectories.begin(), report.trajectories.end(),
              [](const Trajectory& a, const Trajectory& b) { return a.id() < b.id(); });
    const double start = now_ms();
    report.wait_ms = start - s.last_step_end_ms;

    int64_t staleness_sum = 0, sampled = 0;
    for (const Trajectory& t : report.trajectories) {
      for (const int32_t version : t.versions) {
        if (version < 0) continue;
        report.max_staleness = std::max<int64_t>(report.max_staleness, s.next_step - version);
        staleness_sum += s.next_step - version;
        ++sampled;
      }
    }
    report.mean_staleness = sampled ? static_cast<double>(staleness_sum) / static_cast<double>(sampled) : 0.0;

    const auto samples = policy_samples(report.trajectories, s.setup.samples_per_prompt, s.setup.algorithm,
                                        s.setup.unscored_reward, report.groups_equal, report.groups_filtered);
    if (samples.empty()) {
      report.skipped_because = "every group was filtered out (all rewards equal)";
    } else if (auto stats = s.setup.trainer->step(samples); stats) {
      report.updated = true;
      report.stats = *stats;
    } else {
      report.skipped_because = stats.status().message();
    }
    const double trained = now_ms();
    report.train_ms = trained - start;
    ++s.next_step;
    publish(self, static_cast<int32_t>(s.next_step));
    report.publish_ms = now_ms() - trained;
    if (s.setup.on_step) s.setup.on_step(report);
    s.last_step_end_ms = now_ms();
  }
}

}  // namespace

std::vector<model::PolicySample> policy_samples(const std::vector<Trajectory>& batch, int samples_per_prompt,
                                                const config::AlgorithmConfig& algorithm, double unscored_reward,
                                                int64_t& groups_equal, int64_t& groups_filtered) {
  groups_equal = groups_filtered = 0;
  const int64_t n = samples_per_prompt, groups = static_cast<int64_t>(batch.size()) / n;
  std::vector<double> rewards;
  for (const Trajectory& t : batch) rewards.push_back(t.score ? t.score->reward : unscored_reward);
  const torch::Tensor r = torch::tensor(rewards, torch::kFloat64).reshape({groups, n});
  const torch::Tensor advantages = model::group_advantages(r, algorithm.adv_epsilon);
  const torch::Tensor equal = model::equal_reward_groups(r);
  std::vector<model::PolicySample> samples;
  for (int64_t g = 0; g < groups; ++g) {
    if (equal[g].item<bool>()) {
      ++groups_equal;
      if (algorithm.filter_equal_groups) {
        ++groups_filtered;
        continue;
      }
    }
    for (int64_t i = 0; i < n; ++i) {
      const Trajectory& t = batch[static_cast<size_t>(g * n + i)];
      if (t.response.empty()) continue;
      model::PolicySample sample;
      sample.prompt = t.job.prompt;
      sample.response = t.response;
      sample.loss_mask = t.loss_mask;
      sample.old_logprobs = t.logprobs;
      sample.advantage = static_cast<float>(advantages[g][i].item<double>());
      samples.push_back(std::move(sample));
    }
  }
  return samples;
}

LearnerApi::behavior_type learner_actor(Self self, LearnerSetup setup) {
  LearnerState& s = self->state;
  s.setup = std::move(setup);
  s.next_step = s.setup.first_step;
  s.last_step_end_ms = now_ms();
  return {
      [self](finished_atom, Trajectory& trajectory) {
        LearnerState& s = self->state;
        const int64_t per_step = static_cast<int64_t>(s.setup.prompts_per_step) * s.setup.samples_per_prompt;
        s.batches[trajectory.id() / per_step].push_back(std::move(trajectory));
        take_ready_steps(self);
      },
  };
}

}  // namespace torl::actors
