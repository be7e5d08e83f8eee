// Per-token log-probs and entropies under the current weights, for the policy update: one batched
// forward with autograd, the softmax taken in float32 (float64 for a float64 model, which finite-
// difference tests use) whatever the model dtype. Used by the learner (one thread at a time, like the
// model).
#pragma once

#include <torch/torch.h>

#include "model/qwen2.hpp"

namespace torl::model {

// All [B, T-1], on the model's device; position t is the prediction of ids[t+1].
struct TokenLogprobs {
  torch::Tensor logprobs;  // float32 (float64 for a float64 model): log p(ids[t+1] | ids[..t]); 0 where not computed
  torch::Tensor entropy;   // same dtype: entropy of the predicted distribution; 0 where not computed
  torch::Tensor valid;     // bool: attention_mask[t] and attention_mask[t+1] both 1
};

struct LogprobOptions {
  // > 0 divides the logits before the softmax, as the sampler does (sampling.cpp), so that the learner
  // scores tokens under the distribution they were drawn from; entropies are of that distribution too.
  double temperature = 1.0;
  // S > 0: the first S tokens are the same real tokens in every row (a prompt template, or a GRPO
  // group's prompt): they are run through the model once and their keys and values shared by all rows,
  // which gives the same results (to rounding) for about (T - S) / T of the compute. S < T; checked.
  int64_t shared_prefix = 0;
  // Which positions to compute, [B, T-1] bool (e.g. a response's tokens); undefined = every valid one.
  // Positions not computed are 0 in the results.
  torch::Tensor wanted;
  // 0: the vocabulary logits of every wanted position at once, through autograd (which keeps them and
  // their softmax for the backward: 3-4 x positions x vocabulary floats). N > 0: N positions at a time,
  // and the backward recomputes each chunk's logits, so that no more than one chunk's [N, vocabulary]
  // exists at any time; the same values and gradients.
  int64_t chunk_positions = 0;
};

// input_ids [B, T] int64, attention_mask [B, T] (1 = real token, 0 = padding), position_ids [B, T]
// int64; T >= 2. Differentiable with respect to the model's parameters (when they require grad).
// Results are on the model's device.
TokenLogprobs token_logprobs(const Qwen2Model& model, const torch::Tensor& input_ids,
                             const torch::Tensor& attention_mask, const torch::Tensor& position_ids,
                             const LogprobOptions& options = {});

}  // namespace torl::model
