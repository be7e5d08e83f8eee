// The GRPO algorithm as pure tensor math (DESIGN.md §6): group-relative advantages and the token-level
// PPO-clip loss with optional KL to a reference policy and an entropy bonus. No model, no optimizer:
// the policy trainer (policy_trainer.hpp) feeds it log-probs, and tests check it against hand-computed
// numbers. Float32 or float64, on any device; any thread (no state).
//
// Dimensions: G groups (prompts), n samples per group, B sequences, T response positions.
#pragma once

#include <torch/torch.h>

#include "config/config.hpp"

namespace torl::model {

// ---- advantages ----

// rewards [G, n] -> advantages [G, n], same dtype and device:
//   A = (r - mean_group(r)) / (std_group(r) + epsilon), std unbiased (divides by n - 1).
// A group whose rewards are all equal gets exactly 0 (it carries no signal), and so does every group
// when n == 1.
torch::Tensor group_advantages(const torch::Tensor& rewards, double epsilon = 1e-6);

// rewards [G, n] -> bool [G]: true where all of a group's rewards are equal (always when n == 1), the
// groups whose advantages are 0; for counting them and for algorithm.filter_equal_groups.
torch::Tensor equal_reward_groups(const torch::Tensor& rewards);

// ---- loss ----

struct GrpoLossOptions {
  double clip_low = 0.2;   // ratio clipped below at 1 - clip_low
  double clip_high = 0.2;  // ratio clipped above at 1 + clip_high (clip-higher when > clip_low)
  config::LossAggregation loss_agg = config::LossAggregation::kTokenMean;
  double kl_coef = 0.0;    // > 0 needs ref_logprobs
  config::KlEstimator kl_estimator = config::KlEstimator::kK3;
  torch::Tensor ref_logprobs;  // [B, T] under the reference policy (no grad); undefined = none
  double entropy_coef = 0.0;   // > 0 needs entropy
  torch::Tensor entropy;       // [B, T] of the current policy (with grad for the bonus); undefined = none
  // The denominator of the aggregation; 0 = this batch's own. For gradient accumulation pass the
  // whole step's: its number of masked tokens (token_mean) or of sequences with at least one masked
  // token (seq_mean); then the micro-batch losses (and every statistic below but the ratio and clip
  // ones) sum to the full batch's.
  double normaliser = 0.0;

  // The algorithm section's clip, aggregation, KL and entropy settings (tensors left undefined).
  static GrpoLossOptions from_config(const config::AlgorithmConfig& algorithm);
};

// Every field but `loss` is detached; all are 0-dim tensors on the inputs' device.
struct GrpoLoss {
  torch::Tensor loss;      // pg_loss + kl_coef * kl - entropy_coef * entropy; differentiable
  torch::Tensor pg_loss;   // aggregated PPO-clip term
  torch::Tensor kl;        // aggregated KL estimate to the reference; 0 without ref_logprobs
  torch::Tensor entropy;   // aggregated entropy; 0 without entropy
  torch::Tensor ppo_kl;    // aggregated old - new log-prob (k1 estimate of KL(old || new))
  // Over this batch's masked tokens (not normalised globally):
  torch::Tensor tokens;          // number of masked tokens
  torch::Tensor clipped_tokens;  // tokens where the clipped term won the min (its gradient is 0)
  torch::Tensor clip_fraction;   // clipped_tokens / tokens (0 when there are none)
  torch::Tensor ratio_min, ratio_max;  // of exp(new - old); 1 when there are no tokens
};

// The token-level PPO-clip loss. Shapes:
//   new_logprobs [B, T]  current policy, with grad
//   old_logprobs [B, T]  the sampler's (behaviour policy)
//   advantages   [B]     one per sequence
//   mask         [B, T]  float or bool; 1 = a model token that counts, 0 = prompt, tool output, padding
// Per token: ratio = exp(new - old), l = -min(ratio * A, clip(ratio, 1 - clip_low, 1 + clip_high) * A);
// KL k1 = new - ref, k3 = exp(ref - new) - (ref - new) - 1. Aggregation of a per-token x:
//   token_mean: sum_{b,t} mask * x / normaliser (default: the mask's sum)
//   seq_mean:   sum_b [sum_t mask * x / sum_t mask] / normaliser (default: rows with a masked token)
// Values at masked-out positions never reach the result (not even as NaN). Computed in new_logprobs'
// dtype. Mismatched shapes or kl_coef > 0 without ref_logprobs (entropy_coef > 0 without entropy)
// are bugs in the caller (checked).
GrpoLoss grpo_loss(const torch::Tensor& new_logprobs, const torch::Tensor& old_logprobs,
                   const torch::Tensor& advantages, const torch::Tensor& mask,
                   const GrpoLossOptions& options);

}  // namespace torl::model
