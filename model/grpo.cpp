#include "model/grpo.hpp"

#include <cmath>

#include "common/check.hpp"

namespace torl::model {

torch::Tensor equal_reward_groups(const torch::Tensor& rewards) {
  TORL_CHECK(rewards.dim() == 2 && rewards.size(1) >= 1, "equal_reward_groups: rewards must be [G, n]");
  return std::get<0>(rewards.max(1)) == std::get<0>(rewards.min(1));
}

torch::Tensor group_advantages(const torch::Tensor& rewards, double epsilon) {
  TORL_CHECK(rewards.dim() == 2 && rewards.size(1) >= 1, "group_advantages: rewards must be [G, n]");
  TORL_CHECK(rewards.is_floating_point(), "group_advantages: rewards must be float32 or float64");
  if (rewards.size(1) == 1) return torch::zeros_like(rewards);  // the unbiased std is undefined
  const auto mean = rewards.mean(1, /*keepdim=*/true);
  const auto std = rewards.std(1, /*unbiased=*/true, /*keepdim=*/true);
  const auto adv = (rewards - mean) / (std + epsilon);
  // r - mean need not be exactly 0 for equal floats (rounding in the mean): force it.
  return adv.masked_fill(equal_reward_groups(rewards).unsqueeze(1), 0.0);
}

GrpoLossOptions GrpoLossOptions::from_config(const config::AlgorithmConfig& algorithm) {
  GrpoLossOptions o;
  o.clip_low = algorithm.clip_low;
  o.clip_high = algorithm.clip_high;
  o.loss_agg = algorithm.loss_agg;
  o.kl_coef = algorithm.kl_coef;
  o.kl_estimator = algorithm.kl_estimator;
  o.entropy_coef = algorithm.entropy_coef;
  return o;
}

namespace {

// sum over masked tokens of x, normalised per `loss_agg` (see grpo_loss); x and mask [B, T] float.
struct Aggregator {
  config::LossAggregation agg;
  torch::Tensor mask;       // [B, T] float, 0/1
  torch::Tensor seq_len;    // [B] masked tokens per row, at least 1 (for seq_mean)
  torch::Tensor denominator;

  torch::Tensor operator()(const torch::Tensor& x) const {
    const auto masked = x * mask;
    if (agg == config::LossAggregation::kTokenMean) return masked.sum() / denominator;
    return (masked.sum(1) / seq_len).sum() / denominator;
  }
};

}  // namespace

GrpoLoss grpo_loss(const torch::Tensor& new_logprobs, const torch::Tensor& old_logprobs,
                   const torch::Tensor& advantages, const torch::Tensor& mask,
                   const GrpoLossOptions& options) {
  TORL_CHECK(new_logprobs.dim() == 2, "grpo_loss: new_logprobs must be [B, T]");
  const auto sizes = new_logprobs.sizes();
  TORL_CHECK(old_logprobs.sizes() == sizes && mask.sizes() == sizes,
             "grpo_loss: old_logprobs and mask must have new_logprobs' shape [B, T]");
  TORL_CHECK(advantages.dim() == 1 && advantages.size(0) == sizes[0], "grpo_loss: advantages must be [B]");
  TORL_CHECK(options.kl_coef == 0 || options.ref_logprobs.defined(),
             "grpo_loss: kl_coef > 0 needs ref_logprobs");
  TORL_CHECK(options.entropy_coef == 0 || options.entropy.defined(),
             "grpo_loss: entropy_coef > 0 needs entropy");
  TORL_CHECK(!options.ref_logprobs.defined() || options.ref_logprobs.sizes() == sizes,
             "grpo_loss: ref_logprobs must be [B, T]");
  TORL_CHECK(!options.entropy.defined() || options.entropy.sizes() == sizes,
             "grpo_loss: entropy must be [B, T]");

  const auto opts = new_logprobs.options();  // dtype and device of the results
  const auto keep = mask.to(new_logprobs.device()) != 0;  // [B, T] bool
  const auto keep_f = keep.to(opts.dtype());
  const auto tokens = keep_f.sum();
  const auto row_len = keep_f.sum(1);  // [B]

  Aggregator agg{options.loss_agg, keep_f, row_len.clamp_min(1.0), {}};
  if (options.normaliser > 0) {
    agg.denominator = torch::scalar_tensor(options.normaliser, opts);
  } else if (options.loss_agg == config::LossAggregation::kTokenMean) {
    agg.denominator = tokens.clamp_min(1.0);
  } else {
    agg.denominator = (row_len > 0).to(opts.dtype()).sum().clamp_min(1.0);
  }

  // Masked-out positions get a log-ratio of 0 so that no inf or NaN from them reaches a sum.
  const auto old_lp = old_logprobs.to(opts);
  const auto log_ratio = (new_logprobs - old_lp).masked_fill(keep.logical_not(), 0.0);
  const auto ratio = log_ratio.exp();
  const auto adv = advantages.to(opts).unsqueeze(1);  // [B, 1]
  const auto unclipped = -ratio * adv;
  const auto clipped = -ratio.clamp(1.0 - options.clip_low, 1.0 + options.clip_high) * adv;
  const auto per_token = torch::max(unclipped, clipped);  // = -min(ratio A, clip(ratio) A)

  GrpoLoss out;
  auto loss = agg(per_token);
  out.pg_loss = loss.detach();
  out.ppo_kl = agg(-log_ratio.detach());

  out.kl = torch::zeros({}, opts);
  if (options.ref_logprobs.defined()) {
    const auto ref_minus_new =
        (options.ref_logprobs.to(opts) - new_logprobs).masked_fill(keep.logical_not(), 0.0);
    const auto kl = options.kl_estimator == config::KlEstimator::kK1
                        ? -ref_minus_new
                        : ref_minus_new.exp() - ref_minus_new - 1.0;
    const auto kl_agg = agg(kl);
    out.kl = kl_agg.detach();
    if (options.kl_coef != 0) loss = loss + options.kl_coef * kl_agg;
  }

  out.entropy = torch::zeros({}, opts);
  if (options.entropy.defined()) {
    const auto entropy = options.entropy.to(opts.dtype()).masked_fill(keep.logical_not(), 0.0);
    const auto entropy_agg = agg(entropy);
    out.entropy = entropy_agg.detach();
    if (options.entropy_coef != 0) loss = loss - options.entropy_coef * entropy_agg;
  }
  out.loss = loss;

  // The clip is active where the clipped term is strictly the larger loss: there the gradient is 0.
  const auto ratio_d = ratio.detach();
  out.tokens = tokens;
  out.clipped_tokens = ((clipped.detach() > unclipped.detach()) & keep).to(opts.dtype()).sum();
  out.clip_fraction = out.clipped_tokens / tokens.clamp_min(1.0);
  const auto any = tokens > 0;
  const auto one = torch::ones({}, opts);
  out.ratio_min = torch::where(any, ratio_d.masked_fill(keep.logical_not(), INFINITY).min(), one);
  out.ratio_max = torch::where(any, ratio_d.masked_fill(keep.logical_not(), -INFINITY).max(), one);
  return out;
}

}  // namespace torl::model
