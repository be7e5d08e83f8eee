// The learner's batch preparation: rewards to group advantages, equal-reward groups counted and
// (when configured) left out, trajectories that never produced a token or that the infrastructure
// failed left out. And the learner actor on the tiny fixture model under CAF's deterministic
// scheduler: batches that arrive out of order (max_staleness > 0) are taken in step order, and a step
// whose every group was filtered out is skipped without touching the weights.
#include "tests/caf_testing.hpp"

#include "actors/learner_actor.hpp"
#include "tests/model/policy_samples.hpp"

// After the LibTorch headers: glog (through c10) defines its own CHECK (see qwen2_test.cpp).
#include <doctest/doctest.h>

namespace torl::actors {
namespace {

Trajectory scored(int64_t id, double reward, std::vector<int32_t> response) {
  Trajectory t;
  t.job.id = id;
  t.job.prompt = {1, 2};
  t.response = std::move(response);
  t.loss_mask.assign(t.response.size(), 1);
  t.logprobs.assign(t.response.size(), -0.5f);
  t.versions.assign(t.response.size(), 0);
  t.score = rewards::Score{reward, reward > 0 ? rewards::Outcome::kCorrect : rewards::Outcome::kWrong, "x", false};
  return t;
}

// A learner over the tiny fixture model, one group of 2 trajectories a step, and the reports of its steps.
struct LearnerRig {
  explicit LearnerRig(config::AlgorithmConfig algorithm = {}) : policy(testing::load_tiny()) {
    model::PolicyTrainerOptions options;
    options.train.lr = 1e-2;
    options.algorithm = algorithm;
    auto made = model::PolicyTrainer::create(policy, options, nullptr);
    REQUIRE_MESSAGE(made.ok(), made.status().to_string());
    trainer.emplace(std::move(*made));
    LearnerSetup setup;
    setup.trainer = &*trainer;
    setup.policy = &policy;
    setup.prompts_per_step = 1;
    setup.samples_per_prompt = 2;
    setup.groups_here = 1;
    setup.algorithm = algorithm;
    setup.on_step = [this](StepReport& report) { reports.push_back(std::move(report)); };
    learner = system->spawn(learner_actor, std::move(setup));
  }
  ~LearnerRig() {
    caf::anon_send_exit(learner, caf::exit_reason::user_shutdown);
    sched->run();
  }
  void send(Trajectory t) {
    caf::anon_send(learner, finished_atom::value, std::move(t));
    sched->run();
  }
  torch::Tensor weights() const { return policy.named_parameters().at("model.embed_tokens.weight").clone(); }

  model::Qwen2Model policy;
  std::optional<model::PolicyTrainer> trainer;
  testing::DeterministicActors deterministic;
  std::unique_ptr<caf::actor_system>& system = deterministic.system;
  caf::scheduler::test_coordinator*& sched = deterministic.sched;
  LearnerApi learner;
  std::vector<StepReport> reports;
};

std::vector<int64_t> ids_of(const StepReport& report) {
  std::vector<int64_t> out;
  for (const Trajectory& t : report.trajectories) out.push_back(t.id());
  return out;
}

}  // namespace

TEST_SUITE("actors") {
  TEST_CASE("learner: a later step's batch that is complete first waits, and steps are taken in order") {
    LearnerRig rig;
    const torch::Tensor before = rig.weights();
    // step 2's group (ids 2, 3: sampled with version 0, one step stale when trained) arrives first
    rig.send(scored(3, -1.0, {7, 8}));
    rig.send(scored(2, 1.0, {5, 6}));
    CHECK(rig.reports.empty());
    CHECK(torch::equal(rig.weights(), before));
    rig.send(scored(1, -1.0, {9}));
    rig.send(scored(0, 1.0, {5}));
    REQUIRE(rig.reports.size() == 2);
    CHECK(rig.reports[0].step == 1);
    CHECK(ids_of(rig.reports[0]) == std::vector<int64_t>{0, 1});
    CHECK(rig.reports[0].max_staleness == 0);
    CHECK(rig.reports[1].step == 2);
    CHECK(ids_of(rig.reports[1]) == std::vector<int64_t>{2, 3});
    CHECK(rig.reports[1].max_staleness == 1);
    CHECK(rig.reports[0].updated);
    CHECK(rig.reports[1].updated);
    CHECK(rig.trainer->step_count() == 2);
    CHECK_FALSE(torch::equal(rig.weights(), before));
  }

  TEST_CASE("learner: a step whose every group was filtered out is skipped and leaves the weights alone") {
    config::AlgorithmConfig algorithm;
    algorithm.filter_equal_groups = true;
    LearnerRig rig(algorithm);
    const torch::Tensor before = rig.weights();
    rig.send(scored(0, -1.0, {5}));
    rig.send(scored(1, -1.0, {6}));
    REQUIRE(rig.reports.size() == 1);
    CHECK_FALSE(rig.reports[0].updated);
    CHECK(rig.reports[0].skipped_because == "every group was filtered out (all rewards equal)");
    CHECK(rig.reports[0].groups_filtered == 1);
    CHECK(rig.trainer->step_count() == 0);
    CHECK(torch::equal(rig.weights(), before));
    // the next step, with a signal, trains
    rig.send(scored(2, 1.0, {5}));
    rig.send(scored(3, -1.0, {6}));
    REQUIRE(rig.reports.size() == 2);
    CHECK(rig.reports[1].updated);
    CHECK(rig.trainer->step_count() == 1);
    CHECK_FALSE(torch::equal(rig.weights(), before));
  }

  TEST_CASE("policy_samples: group advantages, equal groups counted and filtered, empty responses left out") {
    const std::vector<Trajectory> batch = {scored(0, 1.0, {5, 6}), scored(1, -1.0, {7}),   // group 0
                                           scored(2, -1.0, {8}), scored(3, -1.0, {9}),     // group 1: all equal
                                           scored(4, 1.0, {}), scored(5, 0.0, {3})};       // group 2: one empty
    config::AlgorithmConfig algorithm;
    auto out = policy_samples(batch, 2, algorithm);
    CHECK(out.groups_equal == 1);
    CHECK(out.groups_filtered == 0);
    CHECK(out.infra_failed == 0);
    const auto& samples = out.samples;
    REQUIRE(samples.size() == 5);  // the empty response is left out
    // {1, -1}: mean 0, unbiased std sqrt(2)
    CHECK(samples[0].advantage == doctest::Approx(1.0 / std::sqrt(2.0)).epsilon(1e-5));
    CHECK(samples[1].advantage == doctest::Approx(-1.0 / std::sqrt(2.0)).epsilon(1e-5));
    CHECK(samples[2].advantage == 0.0f);
    CHECK(samples[3].advantage == 0.0f);
    CHECK(samples[4].advantage == doctest::Approx(-1.0 / std::sqrt(2.0)).epsilon(1e-5));  // {1, 0}: the 0
    CHECK(samples[0].response == std::vector<int32_t>{5, 6});
    CHECK(samples[0].old_logprobs == std::vector<float>{-0.5f, -0.5f});

    algorithm.filter_equal_groups = true;
    out = policy_samples(batch, 2, algorithm);
    CHECK(out.groups_equal == 1);
    CHECK(out.groups_filtered == 1);
    CHECK(out.samples.size() == 3);
  }

  TEST_CASE("policy_samples: trajectories the infrastructure failed are left out of their group and counted") {
    // group 0: one never scored (the reward timed out); group 1: a sandbox_error call; group 2: both fail
    std::vector<Trajectory> batch = {scored(0, 1.0, {5}), scored(1, 0.0, {6}), scored(2, -1.0, {7}),
                                     scored(3, 1.0, {8}), scored(4, -1.0, {9}), scored(5, 0.0, {3}),
                                     scored(6, 1.0, {4}), scored(7, -1.0, {2}), scored(8, 0.0, {1})};
    batch[1].score.reset();
    batch[1].error = "not scored: request_timeout";
    ToolCall call;
    call.result = sandbox::sandbox_error("the worker process died during this call");
    batch[4].tool_calls.push_back(call);
    batch[7].score.reset();
    batch[8].tool_calls.push_back(call);
    CHECK(batch[0].infra_failure().empty());
    CHECK(batch[1].infra_failure() == "not scored: request_timeout");
    CHECK(batch[4].infra_failure() == "sandbox failed call 1: the worker process died during this call");

    const auto out = policy_samples(batch, 3, config::AlgorithmConfig{});
    CHECK(out.infra_failed == 4);
    CHECK(out.first_infra_failure == "trajectory 1: not scored: request_timeout");
    CHECK(out.groups_too_small == 1);  // group 2 keeps one trajectory: no advantage to compute
    REQUIRE(out.samples.size() == 4);
    // group 0 without trajectory 1: {1, -1}; group 1 without trajectory 4: {1, 0}
    CHECK(out.samples[0].response == std::vector<int32_t>{5});
    CHECK(out.samples[0].advantage == doctest::Approx(1.0 / std::sqrt(2.0)).epsilon(1e-5));
    CHECK(out.samples[1].response == std::vector<int32_t>{7});
    CHECK(out.samples[1].advantage == doctest::Approx(-1.0 / std::sqrt(2.0)).epsilon(1e-5));
    CHECK(out.samples[2].response == std::vector<int32_t>{8});
    CHECK(out.samples[3].response == std::vector<int32_t>{3});
    CHECK(out.samples[3].advantage == doctest::Approx(-1.0 / std::sqrt(2.0)).epsilon(1e-5));
  }
}

}  // namespace torl::actors
