// Per-token log-probs and entropies under the current weights, for the policy update: one batched
// forward with autograd, the softmax taken in float32 whatever the model dtype. Used by the learner
// (one thread at a time, like the model).
#pragma once

#include <torch/torch.h>

#include "model/qwen2.hpp"

namespace torl::model {

// All [B, T-1], on the model's device; position t is the prediction of ids[t+1].
struct TokenLogprobs {
  torch::Tensor logprobs;  // float32: log p(ids[t+1] | ids[..t]); 0 where not valid
  torch::Tensor entropy;   // float32: entropy of the predicted distribution; 0 where not valid
  torch::Tensor valid;     // bool: attention_mask[t] and attention_mask[t+1] both 1
};

// input_ids [B, T] int64, attention_mask [B, T] (1 = real token, 0 = padding), position_ids [B, T]
// int64; T >= 2. Differentiable with respect to the model's parameters (when they require grad).
// Results are on the model's device.
TokenLogprobs token_logprobs(const Qwen2Model& model, const torch::Tensor& input_ids,
                             const torch::Tensor& attention_mask,
                             const torch::Tensor& position_ids);

}  // namespace torl::model
