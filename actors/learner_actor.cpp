#include "actors/learner_actor.hpp"

#include <algorithm>
#include <chrono>

#include "model/device.hpp"
#include "model/grpo.hpp"

namespace torl::actors {
namespace {

using Self = LearnerApi::stateful_pointer<LearnerState>;

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void publish(Self self, int32_t version) {
  LearnerState& s = self->state;
  if (s.setup.broadcast) {
    const Status sent = s.setup.broadcast->send(version, s.setup.policy->named_parameters());
    // closed: the run is ending and no generator needs the weights
    if (!sent.ok() && !s.setup.broadcast->closed()) {
      throw std::runtime_error("publishing the weights of version " + std::to_string(version) + ": " + sent.message());
    }
    return;
  }
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

    auto batch = policy_samples(report.trajectories, s.setup.samples_per_prompt, s.setup.algorithm);
    report.groups_equal = batch.groups_equal;
    report.groups_filtered = batch.groups_filtered;
    report.infra_failed = batch.infra_failed;
    report.groups_too_small = batch.groups_too_small;
    const auto trajectories = static_cast<double>(report.trajectories.size());
    if (batch.infra_failed > s.setup.max_infra_failures * trajectories) {
      throw std::runtime_error("step " + std::to_string(report.step) + ": " + std::to_string(batch.infra_failed) +
                               " of " + std::to_string(report.trajectories.size()) +
                               " trajectories failed in the infrastructure, more than train.max_infra_failures (" +
                               std::to_string(s.setup.max_infra_failures) + "); the first: " + batch.first_infra_failure);
    }
    // Data parallel, every rank calls step (collectives), also with nothing to train on.
    if (batch.samples.empty() && !s.setup.data_parallel) {
      report.skipped_because = batch.groups_too_small > 0 ? "no group had 2 trajectories the infrastructure did not fail"
                                                          : "every group was filtered out (all rewards equal)";
    } else if (auto stats = s.setup.trainer->step(batch.samples); stats) {
      report.updated = true;
      report.stats = *stats;
    } else if (stats.status().code() == StatusCode::kAborted) {
      report.skipped_because = stats.status().message();
    } else {
      throw std::runtime_error("policy update of step " + std::to_string(report.step) + ": " + stats.status().message());
    }
    const double trained = now_ms();
    report.train_ms = trained - start;
    ++s.next_step;
    publish(self, static_cast<int32_t>(s.next_step));
    report.publish_ms = now_ms() - trained;
    report.peak_device_bytes = model::peak_device_memory(s.setup.policy->device());
    if (s.setup.on_step) s.setup.on_step(report);
    s.last_step_end_ms = now_ms();
  }
}

}  // namespace

BatchSamples policy_samples(const std::vector<Trajectory>& batch, int samples_per_prompt,
                            const config::AlgorithmConfig& algorithm) {
  BatchSamples out;
  const size_t n = static_cast<size_t>(samples_per_prompt);
  for (size_t begin = 0; begin < batch.size(); begin += n) {
    std::vector<const Trajectory*> group;
    for (size_t i = begin; i < std::min(batch.size(), begin + n); ++i) {
      const std::string failure = batch[i].infra_failure();
      if (failure.empty()) {
        group.push_back(&batch[i]);
        continue;
      }
      if (out.infra_failed++ == 0) out.first_infra_failure = "trajectory " + std::to_string(batch[i].id()) + ": " + failure;
    }
    if (group.size() < 2) {
      ++out.groups_too_small;
      continue;
    }
    std::vector<double> rewards;
    for (const Trajectory* t : group) rewards.push_back(t->score->reward);
    const torch::Tensor r = torch::tensor(rewards, torch::kFloat64).reshape({1, static_cast<int64_t>(group.size())});
    const torch::Tensor advantages = model::group_advantages(r, algorithm.adv_epsilon);
    if (model::equal_reward_groups(r)[0].item<bool>()) {
      ++out.groups_equal;
      if (algorithm.filter_equal_groups) {
        ++out.groups_filtered;
        continue;
      }
    }
    for (size_t i = 0; i < group.size(); ++i) {
      const Trajectory& t = *group[i];
      if (t.response.empty()) continue;
      model::PolicySample sample;
      sample.prompt = t.job.prompt;
      sample.response = t.response;
      sample.loss_mask = t.loss_mask;
      sample.old_logprobs = t.logprobs;
      sample.advantage = static_cast<float>(advantages[0][static_cast<int64_t>(i)].item<double>());
      out.samples.push_back(std::move(sample));
    }
  }
  return out;
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
