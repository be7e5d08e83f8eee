// Real-size training's numerics on the tiny fixture (../shared/fixtures/tiny-qwen2): bfloat16 compute
// with float32 master weights against float32 and against pure bfloat16 at a real learning rate; the
// masters and AdamW state through a checkpoint; π_old from the trainer (ratio exactly 1) or the sampler.
#include <cmath>
#include <string>
#include <vector>

#include "model/policy_trainer.hpp"
#include "model/safetensors.hpp"
#include "tests/model/policy_samples.hpp"

// After the LibTorch headers: glog (through c10) defines its own CHECK (see qwen2_test.cpp).
#include <doctest/doctest.h>

namespace torl::model {
namespace {

using testing::load_tiny;
using testing::response_logprobs;

std::vector<PolicySample> samples_for(const Qwen2Model& model, double offset) {
  return testing::make_policy_samples(model, {.seed = 777,
                                              .prompt_len = {3, 5, 2, 4},
                                              .response_len = {6, 4, 9, 5},
                                              .advantage = {1.1f, -0.7f, 0.6f, -1.0f},
                                              .tool_every = 4,
                                              .tool_at = 2,
                                              .offset = offset});
}

PolicyTrainer make_trainer(Qwen2Model& model, const PolicyTrainerOptions& options) {
  auto trainer = PolicyTrainer::create(model, options);
  REQUIRE_MESSAGE(trainer.ok(), trainer.status().to_string());
  return std::move(*trainer);
}

// The master weights as one float64 vector.
torch::Tensor flat_masters(const PolicyTrainer& trainer) {
  std::vector<torch::Tensor> parts;
  for (const auto& m : trainer.master_weights()) parts.push_back(m.detach().to(torch::kFloat64).reshape(-1));
  return torch::cat(parts);
}

struct Trained {
  torch::Tensor delta;     // masters after - before, float64
  double changed = 0;      // fraction of master weights that moved
  bool mixed = false;
};

// 10 AdamW steps at lr 1e-6 on the same samples, the policy in `dtype`, the masters in `master`.
Trained train_ten_steps(torch::ScalarType dtype, config::DType master, const std::vector<PolicySample>& samples) {
  auto model = load_tiny(dtype);
  PolicyTrainerOptions o;
  o.train.lr = 1e-6;
  o.train.micro_batch = 2;
  o.train.master_dtype = master;
  auto trainer = make_trainer(model, o);
  const auto before = flat_masters(trainer);
  for (int i = 0; i < 10; ++i) {
    const auto stats = trainer.step(samples);
    REQUIRE_MESSAGE(stats.ok(), stats.status().to_string());
  }
  Trained t;
  t.delta = flat_masters(trainer) - before;
  t.changed = (t.delta != 0).to(torch::kFloat64).mean().item<double>();
  t.mixed = trainer.mixed_precision();
  return t;
}

double cosine(const torch::Tensor& a, const torch::Tensor& b) {
  return (a * b).sum().item<double>() / (a.norm().item<double>() * b.norm().item<double>());
}

TEST_SUITE("model") {
  TEST_CASE("bfloat16 compute with float32 masters updates like float32 at lr 1e-6; pure bfloat16 loses the updates") {
    const auto samples = samples_for(load_tiny(), 0.0);
    const auto f32 = train_ten_steps(torch::kFloat32, config::DType::kFloat32, samples);
    const auto mixed = train_ten_steps(torch::kBFloat16, config::DType::kFloat32, samples);
    const auto pure = train_ten_steps(torch::kBFloat16, config::DType::kBFloat16, samples);
    CHECK_FALSE(f32.mixed);
    CHECK(mixed.mixed);
    CHECK_FALSE(pure.mixed);
    const double agree = cosine(mixed.delta, f32.delta);
    const double size = mixed.delta.norm().item<double>() / f32.delta.norm().item<double>();
    MESSAGE("weights changed by 10 steps: float32 " << f32.changed << ", bfloat16 + float32 masters " << mixed.changed
                                                    << ", pure bfloat16 " << pure.changed);
    MESSAGE("masters' update vs float32's: cosine " << agree << ", norm ratio " << size
                                                    << "; max |difference| " << (mixed.delta - f32.delta).abs().max().item<double>()
                                                    << " of max |update| " << f32.delta.abs().max().item<double>());
    CHECK(f32.changed > 0.5);
    CHECK(std::abs(mixed.changed - f32.changed) < 0.02);
    CHECK(agree > 0.99);
    CHECK(size == doctest::Approx(1.0).epsilon(0.05));
    CHECK(pure.changed < 0.25 * f32.changed);
  }

  TEST_CASE("mixed precision: masters and AdamW state in float32 through the optimizer state; resume is exact") {
    const auto samples = samples_for(load_tiny(), 0.0);
    auto a = load_tiny(torch::kBFloat16);
    PolicyTrainerOptions o;
    o.train.lr = 1e-4;
    o.train.micro_batch = 2;
    auto trainer_a = make_trainer(a, o);
    REQUIRE(trainer_a.step(samples).ok());
    REQUIRE(trainer_a.step(samples).ok());
    const auto state = trainer_a.optimizer_state();
    const auto params = a.named_parameters();
    CHECK(state.size() == 4 * params.size());
    for (const auto& [name, p] : params) {
      CHECK((p.scalar_type() == torch::kBFloat16));
      CHECK((state.at("master/" + name).scalar_type() == torch::kFloat32));
      CHECK((state.at("exp_avg_sq/" + name).scalar_type() == torch::kFloat32));
      // the policy holds the masters rounded to bfloat16
      CHECK(torch::equal(p.detach(), state.at("master/" + name).to(torch::kBFloat16)));
    }

    // b: a policy loaded in bfloat16 from what a checkpoint holds (a's bfloat16 weights), then the state
    auto b = load_tiny(torch::kBFloat16);
    {
      torch::NoGradGuard no_grad;
      for (auto& [name, p] : b.named_parameters()) p.copy_(params.at(name));
    }
    auto trainer_b = make_trainer(b, o);
    const Status loaded = trainer_b.load_optimizer_state(state);
    REQUIRE_MESSAGE(loaded.ok(), loaded.to_string());
    trainer_b.set_step_count(trainer_a.step_count());
    CHECK(torch::equal(flat_masters(trainer_a), flat_masters(trainer_b)));
    REQUIRE(trainer_a.step(samples).ok());
    REQUIRE(trainer_b.step(samples).ok());
    CHECK(torch::equal(flat_masters(trainer_a), flat_masters(trainer_b)));

    // A state without masters (a float32 run's) is refused, naming what is missing.
    auto without = state;
    for (const auto& [name, p] : params) without.erase("master/" + name);
    auto c = load_tiny(torch::kBFloat16);
    auto trainer_c = make_trainer(c, o);
    const Status refused = trainer_c.load_optimizer_state(without);
    CHECK_FALSE(refused.ok());
    CHECK(refused.message().find("missing master/") != std::string::npos);
  }

  TEST_CASE("master_dtype narrower than the policy is refused") {
    auto model = load_tiny(torch::kFloat32);
    PolicyTrainerOptions o;
    o.train.master_dtype = config::DType::kBFloat16;
    const auto trainer = PolicyTrainer::create(model, o);
    REQUIRE_FALSE(trainer.ok());
    CHECK(trainer.status().message().find("train.master_dtype") != std::string::npos);
  }

  TEST_CASE("old_logprobs trainer: the ratio is exactly 1 and the sampler's gap is measured; sampler: its ratios") {
    auto model = load_tiny();
    const auto samples = samples_for(model, 0.5);  // the sampler's log-probs off by up to +-0.5
    double gap = 0;
    int64_t tokens = 0;
    for (const auto& s : samples) {
      const auto own = response_logprobs(model, s, 1.0);
      for (size_t j = 0; j < own.size(); ++j) {
        if (!s.loss_mask[j]) continue;
        gap += std::abs(static_cast<double>(s.old_logprobs[j]) - own[j]);
        ++tokens;
      }
    }
    gap /= static_cast<double>(tokens);
    REQUIRE(gap > 0.1);

    PolicyTrainerOptions o;
    o.train.micro_batch = 2;
    o.algorithm.old_logprobs = config::OldLogprobs::kTrainer;
    auto trainer = make_trainer(model, o);
    const auto own = trainer.compute_gradients(samples);
    REQUIRE(own.ok());
    CHECK(own->ratio_min == 1.0);
    CHECK(own->ratio_max == 1.0);
    CHECK(own->clip_fraction == 0.0);
    CHECK(own->ppo_kl == 0.0);
    CHECK(own->sampler_gap == doctest::Approx(gap).epsilon(1e-6));
    TensorMap trainer_grads;
    for (const auto& [name, p] : model.named_parameters()) trainer_grads[name] = p.grad().clone();

    o.algorithm.old_logprobs = config::OldLogprobs::kSampler;
    auto sampler = make_trainer(model, o);
    const auto theirs = sampler.compute_gradients(samples);
    REQUIRE(theirs.ok());
    CHECK(theirs->ratio_max - theirs->ratio_min > 0.1);
    CHECK(theirs->clip_fraction > 0.0);
    CHECK(theirs->sampler_gap == doctest::Approx(gap).epsilon(1e-6));

    // trainer's π_old is the policy itself: the gradient of sampler mode given the model's own log-probs
    auto exact = samples;
    for (auto& s : exact) {
      const auto lp = response_logprobs(model, s, 1.0);
      s.old_logprobs.assign(lp.begin(), lp.end());
    }
    const auto on_policy = sampler.compute_gradients(exact);
    REQUIRE(on_policy.ok());
    CHECK(on_policy->sampler_gap < 1e-6);
    double diff = 0, scale = 0;
    for (const auto& [name, p] : model.named_parameters()) {
      diff = std::max(diff, (p.grad() - trainer_grads.at(name)).abs().max().item<double>());
      scale = std::max(scale, trainer_grads.at(name).abs().max().item<double>());
    }
    CHECK(scale > 1e-3);
    CHECK(diff < 1e-6 * scale);
  }
}

}  // namespace
}  // namespace torl::model
