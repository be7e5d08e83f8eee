// GRPO advantages and the PPO-clip loss against numbers worked out by hand (float64), and the global
// normaliser that lets micro-batch losses add up to the full batch's.
#include <cmath>
#include <limits>

#include "model/grpo.hpp"

// After the LibTorch headers: glog (through c10) defines its own CHECK (see qwen2_test.cpp).
#include <doctest/doctest.h>

namespace torl::model {
namespace {

using config::KlEstimator;
using config::LossAggregation;

const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

double at(const torch::Tensor& t, int64_t i, int64_t j) { return t[i][j].item<double>(); }
double value(const torch::Tensor& t) { return t.item<double>(); }

// The [2, 4] example. clip_low 0.2, clip_high 0.3 -> ratios are clipped to [0.8, 1.3].
//   row 0, A = +2: ratios 1.1 (inside), 1.5 (above: clip active), 0.5 (below: not active),
//                  masked (log-ratio 1000: exp overflows if it leaked)
//   row 1, A = -1: ratios 0.5 (below: clip active), masked (old log-prob NaN), 1.5 (above: not
//                  active), masked
// Per-token losses -min(r A, clip(r) A): row 0: -2.2, -2.6, -1.0; row 1: 0.8, 1.5.
struct Example {
  torch::Tensor new_lp, old_lp, adv, mask;
  Example() {
    new_lp = torch::tensor({{-1.0, -0.5, -2.0, 0.0}, {-0.3, -0.7, -1.2, -0.4}}, kF64);
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const auto log_ratio = torch::tensor({{std::log(1.1), std::log(1.5), std::log(0.5), 1000.0},
                                          {std::log(0.5), nan, std::log(1.5), 0.0}},
                                         kF64);
    old_lp = new_lp - log_ratio;
    adv = torch::tensor({2.0, -1.0}, kF64);
    mask = torch::tensor({{1.0, 1.0, 1.0, 0.0}, {1.0, 0.0, 1.0, 0.0}}, kF64);
  }
  GrpoLossOptions options(LossAggregation agg = LossAggregation::kTokenMean) const {
    GrpoLossOptions o;
    o.clip_low = 0.2;
    o.clip_high = 0.3;
    o.loss_agg = agg;
    return o;
  }
};

constexpr double kTol = 1e-12;

TEST_SUITE("model") {
  TEST_CASE("group advantages are (r - mean) / (unbiased std + eps), zero for equal groups") {
    const auto rewards = torch::tensor({{1.0, -1.0, -1.0, 1.0}, {1.0, 0.0, 0.0, 0.0}, {0.1, 0.1, 0.1, 0.1}},
                                       kF64);
    const auto adv = group_advantages(rewards, 1e-6);
    REQUIRE(adv.sizes() == rewards.sizes());
    // Group 0: mean 0, unbiased std sqrt(4/3) = 1.1547 -> +-0.8660 (not +-1, the biased std's answer).
    const double a0 = 1.0 / (std::sqrt(4.0 / 3.0) + 1e-6);
    CHECK(a0 == doctest::Approx(0.8660247).epsilon(1e-6));
    CHECK(at(adv, 0, 0) == doctest::Approx(a0).epsilon(1e-12));
    CHECK(at(adv, 0, 1) == doctest::Approx(-a0).epsilon(1e-12));
    CHECK(at(adv, 0, 3) == doctest::Approx(a0).epsilon(1e-12));
    // Group 1: mean 0.25, unbiased var (0.5625 + 3 * 0.0625) / 3 = 0.25, std 0.5 -> 1.5, -0.5.
    CHECK(at(adv, 1, 0) == doctest::Approx(0.75 / (0.5 + 1e-6)).epsilon(1e-12));
    CHECK(at(adv, 1, 2) == doctest::Approx(-0.25 / (0.5 + 1e-6)).epsilon(1e-12));
    // Group 2: all equal (0.1 is not exact in binary, and the mean may round): exactly 0.
    for (int j = 0; j < 4; ++j) CHECK(at(adv, 2, j) == 0.0);

    const auto equal = equal_reward_groups(rewards);
    REQUIRE(equal.sizes() == torch::IntArrayRef({3}));
    CHECK_FALSE(equal[0].item<bool>());
    CHECK_FALSE(equal[1].item<bool>());
    CHECK(equal[2].item<bool>());

    // float32 gives the same.
    const auto adv32 = group_advantages(rewards.to(torch::kFloat32));
    CHECK((adv32.scalar_type() == torch::kFloat32));
    CHECK(at(adv32, 0, 0) == doctest::Approx(a0).epsilon(1e-6));
  }

  TEST_CASE("one sample per group gives zero advantages and every group counts as equal") {
    const auto rewards = torch::tensor({{3.0}, {1.0}}, kF64);
    const auto adv = group_advantages(rewards);
    CHECK(torch::isfinite(adv).all().item<bool>());
    CHECK(adv.abs().sum().item<double>() == 0.0);
    CHECK(equal_reward_groups(rewards).all().item<bool>());
  }

  TEST_CASE("the PPO-clip loss matches hand-computed numbers, token mean and sequence mean") {
    Example ex;
    const auto new_lp = ex.new_lp.clone().requires_grad_(true);

    // token_mean: (-2.2 - 2.6 - 1.0 + 0.8 + 1.5) / 5 = -0.7
    const auto tok = grpo_loss(new_lp, ex.old_lp, ex.adv, ex.mask, ex.options());
    CHECK(value(tok.loss) == doctest::Approx(-0.7).epsilon(kTol));
    CHECK(value(tok.pg_loss) == doctest::Approx(-0.7).epsilon(kTol));
    CHECK(value(tok.tokens) == 5.0);
    CHECK(value(tok.clipped_tokens) == 2.0);  // row 0 ratio 1.5 (A > 0), row 1 ratio 0.5 (A < 0)
    CHECK(value(tok.clip_fraction) == doctest::Approx(0.4).epsilon(kTol));
    CHECK(value(tok.ratio_min) == doctest::Approx(0.5).epsilon(kTol));
    CHECK(value(tok.ratio_max) == doctest::Approx(1.5).epsilon(kTol));
    CHECK(value(tok.kl) == 0.0);
    CHECK(value(tok.entropy) == 0.0);
    const double ppo_kl = -(std::log(1.1) + std::log(1.5) + 2 * std::log(0.5) + std::log(1.5)) / 5;
    CHECK(value(tok.ppo_kl) == doctest::Approx(ppo_kl).epsilon(kTol));

    // d loss / d new = -ratio * A / 5 where the unclipped term wins, 0 where the clip is active or
    // the token is masked (the in-range token is a tie of both terms: the gradient must still be whole).
    tok.loss.backward();
    const auto g = new_lp.grad();
    CHECK(at(g, 0, 0) == doctest::Approx(-1.1 * 2 / 5).epsilon(kTol));
    CHECK(at(g, 0, 1) == 0.0);
    CHECK(at(g, 0, 2) == doctest::Approx(-0.5 * 2 / 5).epsilon(kTol));
    CHECK(at(g, 0, 3) == 0.0);
    CHECK(at(g, 1, 0) == 0.0);
    CHECK(at(g, 1, 1) == 0.0);
    CHECK(at(g, 1, 2) == doctest::Approx(1.5 / 5).epsilon(kTol));
    CHECK(at(g, 1, 3) == 0.0);
    CHECK(torch::isfinite(g).all().item<bool>());

    // seq_mean: row means -5.8 / 3 and 2.3 / 2, then their mean.
    const auto seq = grpo_loss(ex.new_lp, ex.old_lp, ex.adv, ex.mask, ex.options(LossAggregation::kSequenceMean));
    CHECK(value(seq.loss) == doctest::Approx((-5.8 / 3 + 2.3 / 2) / 2).epsilon(kTol));

    // A bool mask means the same.
    const auto as_bool = grpo_loss(ex.new_lp, ex.old_lp, ex.adv, ex.mask != 0, ex.options());
    CHECK(value(as_bool.loss) == doctest::Approx(-0.7).epsilon(kTol));
  }

  TEST_CASE("symmetric clipping clips where clip-higher does not") {
    Example ex;
    auto o = ex.options();
    o.clip_high = 0.2;  // row 0's ratio 1.5 is now clipped to 1.2: loss -2.4 instead of -2.6
    const auto out = grpo_loss(ex.new_lp, ex.old_lp, ex.adv, ex.mask, o);
    CHECK(value(out.loss) == doctest::Approx((-2.2 - 2.4 - 1.0 + 0.8 + 1.5) / 5).epsilon(kTol));
    o.clip_high = 0.6;  // 1.5 is inside [0.8, 1.6]: nothing above is clipped, only row 1's 0.5
    const auto wide = grpo_loss(ex.new_lp, ex.old_lp, ex.adv, ex.mask, o);
    CHECK(value(wide.loss) == doctest::Approx((-2.2 - 3.0 - 1.0 + 0.8 + 1.5) / 5).epsilon(kTol));
    CHECK(value(wide.clipped_tokens) == 1.0);
  }

  TEST_CASE("the KL term uses k1 or k3 and the entropy bonus is subtracted") {
    Example ex;
    // ref - new per token: row 0: 0.1, -0.2, 0.3, (masked: 500); row 1: 0.5, (masked), -0.5, (masked).
    const auto d = torch::tensor({{0.1, -0.2, 0.3, 500.0}, {0.5, 7.0, -0.5, 9.0}}, kF64);
    auto o = ex.options();
    o.ref_logprobs = ex.new_lp + d;
    o.kl_coef = 0.1;

    o.kl_estimator = KlEstimator::kK1;  // new - ref = -d: (-0.1 + 0.2 - 0.3 - 0.5 + 0.5) / 5
    const auto k1 = grpo_loss(ex.new_lp, ex.old_lp, ex.adv, ex.mask, o);
    CHECK(value(k1.kl) == doctest::Approx(-0.04).epsilon(kTol));
    CHECK(value(k1.loss) == doctest::Approx(-0.7 + 0.1 * -0.04).epsilon(kTol));

    o.kl_estimator = KlEstimator::kK3;  // e^d - d - 1, always >= 0
    const auto f = [](double x) { return std::exp(x) - x - 1; };
    const double k3_mean = (f(0.1) + f(-0.2) + f(0.3) + f(0.5) + f(-0.5)) / 5;
    CHECK(k3_mean == doctest::Approx((0.00517092 + 0.01873075 + 0.04985881 + 0.14872127 + 0.10653066) / 5)
                         .epsilon(1e-7));
    const auto new_lp = ex.new_lp.clone().requires_grad_(true);
    const auto k3 = grpo_loss(new_lp, ex.old_lp, ex.adv, ex.mask, o);
    CHECK(value(k3.kl) == doctest::Approx(k3_mean).epsilon(kTol));
    CHECK(value(k3.loss) == doctest::Approx(-0.7 + 0.1 * k3_mean).epsilon(kTol));
    // d k3 / d new = 1 - e^d: row 1, token 0 (clipped, so only the KL term): 0.1 * (1 - e^0.5) / 5.
    k3.loss.backward();
    CHECK(at(new_lp.grad(), 1, 0) == doctest::Approx(0.1 * (1 - std::exp(0.5)) / 5).epsilon(kTol));
    CHECK(at(new_lp.grad(), 0, 3) == 0.0);  // masked, though ref - new = 500 there

    // Entropy: token mean (1 + 2 + 3 + 0.5 + 1.5) / 5 = 1.6; sequence mean (2 + 1) / 2 = 1.5.
    auto e = ex.options();
    const auto entropy = torch::tensor({{1.0, 2.0, 3.0, 99.0}, {0.5, 99.0, 1.5, 99.0}}, kF64).requires_grad_(true);
    e.entropy = entropy;
    e.entropy_coef = 0.01;
    const auto with_entropy = grpo_loss(ex.new_lp, ex.old_lp, ex.adv, ex.mask, e);
    CHECK(value(with_entropy.entropy) == doctest::Approx(1.6).epsilon(kTol));
    CHECK(value(with_entropy.loss) == doctest::Approx(-0.7 - 0.01 * 1.6).epsilon(kTol));
    with_entropy.loss.backward();
    CHECK(at(entropy.grad(), 0, 0) == doctest::Approx(-0.01 / 5).epsilon(kTol));
    CHECK(at(entropy.grad(), 1, 1) == 0.0);
    e.loss_agg = LossAggregation::kSequenceMean;
    const auto seq = grpo_loss(ex.new_lp, ex.old_lp, ex.adv, ex.mask, e);
    CHECK(value(seq.entropy) == doctest::Approx(1.5).epsilon(kTol));
    CHECK(value(seq.loss) == doctest::Approx((-5.8 / 3 + 2.3 / 2) / 2 - 0.01 * 1.5).epsilon(kTol));
  }

  TEST_CASE("with the global normaliser, per-row losses and gradients add up to the full batch's") {
    Example ex;
    const auto e = torch::tensor({{1.0, 2.0, 3.0, 99.0}, {0.5, 99.0, 1.5, 99.0}}, kF64);
    for (const auto agg : {LossAggregation::kTokenMean, LossAggregation::kSequenceMean}) {
      INFO("seq_mean: " << (agg == LossAggregation::kSequenceMean));
      auto o = ex.options(agg);
      o.kl_coef = 0.1;
      o.entropy_coef = 0.01;
      const auto ref = ex.new_lp + 0.2;
      const auto full_lp = ex.new_lp.clone().requires_grad_(true);
      o.ref_logprobs = ref;
      o.entropy = e;
      const auto full = grpo_loss(full_lp, ex.old_lp, ex.adv, ex.mask, o);
      full.loss.backward();

      o.normaliser = agg == LossAggregation::kTokenMean ? 5.0 : 2.0;
      const auto split_lp = ex.new_lp.clone().requires_grad_(true);
      double sum = 0, pg = 0, kl = 0;
      for (int64_t b = 0; b < 2; ++b) {
        auto row = o;
        row.ref_logprobs = ref.narrow(0, b, 1);
        row.entropy = e.narrow(0, b, 1);
        const auto part = grpo_loss(split_lp.narrow(0, b, 1), ex.old_lp.narrow(0, b, 1),
                                    ex.adv.narrow(0, b, 1), ex.mask.narrow(0, b, 1), row);
        part.loss.backward();
        sum += value(part.loss), pg += value(part.pg_loss), kl += value(part.kl);
      }
      CHECK(sum == doctest::Approx(value(full.loss)).epsilon(kTol));
      CHECK(pg == doctest::Approx(value(full.pg_loss)).epsilon(kTol));
      CHECK(kl == doctest::Approx(value(full.kl)).epsilon(kTol));
      CHECK((split_lp.grad() - full_lp.grad()).abs().max().item<double>() < 1e-15);
      // Without it each row would be its own mean: different numbers.
      o.normaliser = 0;
      o.ref_logprobs = ref.narrow(0, 0, 1);
      o.entropy = e.narrow(0, 0, 1);
      const auto own = grpo_loss(ex.new_lp.narrow(0, 0, 1), ex.old_lp.narrow(0, 0, 1), ex.adv.narrow(0, 0, 1),
                                 ex.mask.narrow(0, 0, 1), o);
      CHECK(value(own.pg_loss) == doctest::Approx(-5.8 / 3).epsilon(kTol));
    }
  }

  TEST_CASE("a batch without model tokens gives a zero loss, not NaN") {
    Example ex;
    const auto out = grpo_loss(ex.new_lp, ex.old_lp, ex.adv, torch::zeros_like(ex.mask), ex.options());
    CHECK(value(out.loss) == 0.0);
    CHECK(value(out.clip_fraction) == 0.0);
    CHECK(value(out.ratio_min) == 1.0);
    CHECK(value(out.ratio_max) == 1.0);
  }

  TEST_CASE("loss options follow the algorithm section") {
    config::AlgorithmConfig algorithm;
    algorithm.clip_low = 0.1;
    algorithm.clip_high = 0.28;
    algorithm.loss_agg = LossAggregation::kSequenceMean;
    algorithm.kl_coef = 0.05;
    algorithm.kl_estimator = KlEstimator::kK1;
    algorithm.entropy_coef = 0.001;
    const auto o = GrpoLossOptions::from_config(algorithm);
    CHECK(o.clip_low == 0.1);
    CHECK(o.clip_high == 0.28);
    CHECK((o.loss_agg == LossAggregation::kSequenceMean));
    CHECK(o.kl_coef == 0.05);
    CHECK((o.kl_estimator == KlEstimator::kK1));
    CHECK(o.entropy_coef == 0.001);
    CHECK(o.normaliser == 0.0);
  }
}

}  // namespace
}  // namespace torl::model
