// A step's metrics line (tools/train_metrics.hpp) reports the trajectories the infrastructure failed:
// a batch with a sandbox_error call and an unscored trajectory gives trajectories/infra_failed 2, and the
// printed step line says they were left out.
#include <string>
#include <vector>

#include "actors/learner_actor.hpp"
#include "actors/train_metrics.hpp"

// After the LibTorch headers: glog (through c10) defines its own CHECK (see qwen2_test.cpp).
#include <doctest/doctest.h>

namespace torl::actors {
namespace {

actors::Trajectory scored(int64_t id, double reward) {
  actors::Trajectory t;
  t.job.id = id;
  t.job.prompt = {1, 2};
  t.response = {3, 4};
  t.loss_mask = {1, 1};
  t.logprobs = {-0.5f, -0.5f};
  t.versions = {0, 0};
  t.score = rewards::Score{reward, reward > 0 ? rewards::Outcome::kCorrect : rewards::Outcome::kWrong, "x", false};
  return t;
}

}  // namespace

TEST_SUITE("actors") {
  TEST_CASE("metrics: trajectories the infrastructure failed are counted and named in the step line") {
    actors::StepReport report;
    report.step = 1;
    for (int i = 0; i < 8; ++i) report.trajectories.push_back(scored(i, i % 2 ? 1.0 : -1.0));
    actors::ToolCall call;
    call.result = sandbox::sandbox_error("no result from the sandbox within 15000 ms");
    report.trajectories[2].tool_calls.push_back(call);
    report.trajectories[5].score.reset();
    const auto batch = actors::policy_samples(report.trajectories, 4, config::AlgorithmConfig{});
    report.infra_failed = batch.infra_failed;
    report.groups_too_small = batch.groups_too_small;
    report.updated = true;
    const Json line = step_line(report, batch_sums(report, nullptr, false), {0, 1}, actors::MetricsSnapshot{});
    CHECK(line["trajectories/infra_failed"].get<double>() == 2.0);
    CHECK(line["groups/too_small"].get<double>() == 0.0);
    CHECK(batch.samples.size() == 6);
    CHECK(step_text(line, 10).find("2 trajectories failed by the infrastructure, left out") != std::string::npos);
  }
}

}  // namespace torl::actors
