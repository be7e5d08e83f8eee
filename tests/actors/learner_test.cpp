// The learner's batch preparation: rewards to group advantages, equal-reward groups counted and
// (when configured) left out, trajectories that never produced a token or that the infrastructure
// failed left out.
#include <doctest/doctest.h>

#include "actors/learner_actor.hpp"

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

}  // namespace

TEST_SUITE("actors") {
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
