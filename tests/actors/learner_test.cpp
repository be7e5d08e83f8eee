// The learner's batch preparation: rewards to group advantages, equal-reward groups counted and
// (when configured) left out, trajectories that never produced a token left out.
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
    int64_t equal = 0, filtered = 0;
    auto samples = policy_samples(batch, 2, algorithm, -1.0, equal, filtered);
    CHECK(equal == 1);
    CHECK(filtered == 0);
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
    samples = policy_samples(batch, 2, algorithm, -1.0, equal, filtered);
    CHECK(equal == 1);
    CHECK(filtered == 1);
    CHECK(samples.size() == 3);
  }

  TEST_CASE("policy_samples: a trajectory that failed before scoring gets the unscored reward") {
    std::vector<Trajectory> batch = {scored(0, 1.0, {5}), scored(1, 1.0, {6})};
    batch[1].score.reset();
    int64_t equal = 0, filtered = 0;
    const auto samples = policy_samples(batch, 2, config::AlgorithmConfig{}, -1.0, equal, filtered);
    CHECK(equal == 0);
    REQUIRE(samples.size() == 2);
    CHECK(samples[0].advantage > 0.0f);
    CHECK(samples[1].advantage < 0.0f);
  }
}

}  // namespace torl::actors
