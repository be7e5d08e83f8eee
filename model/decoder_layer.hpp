// One Qwen2 decoder layer (pre-norm attention with rotary positions and grouped-query heads, then a
// pre-norm SwiGLU MLP) as a function of its input, its weights and the tensors every layer of a forward
// shares; and the same layer with gradient checkpointing, which keeps only its inputs for the backward
// and runs the layer again there. Qwen2Model (qwen2.cpp) calls one or the other. Pure functions; any
// thread. Dimensions: B batch, T new positions, P past positions, S = P + T, C hidden, H query heads,
// K key/value heads, D head size.
#pragma once

#include <functional>

#include <torch/torch.h>

#include "model/qwen2.hpp"

namespace torl::model {

struct DecoderLayerShape {
  int64_t heads = 0;     // H
  int64_t kv_heads = 0;  // K
  int64_t head_dim = 0;  // D
  double rms_norm_eps = 1e-6;
};

struct DecoderLayerOutput {
  torch::Tensor x;     // [B, T, C]
  torch::Tensor k, v;  // [B, K, S, D]: the past keys/values followed by the new positions'
};

// x [B, T, C]; cos, sin [B, 1, T, D] (rotary tables in the model dtype); mask [B, 1, T, S] additive
// (0 = may attend, -inf = not); keep [B, 1, T, 1] (0 zeroes a query's attention output); past_k and
// past_v [B, K, P, D], or undefined for no past.
DecoderLayerOutput decoder_layer(const DecoderLayerShape& shape, const Qwen2LayerWeights& w, const torch::Tensor& x,
                                 const torch::Tensor& cos, const torch::Tensor& sin, const torch::Tensor& mask,
                                 const torch::Tensor& keep, const torch::Tensor& past_k, const torch::Tensor& past_v);

// The same values and gradients. Under autograd it saves only its inputs (the layer's activations, about
// 10 x [B, T, C] plus the MLP's [B, T, intermediate] and attention's, are not kept): the backward
// recomputes the layer with autograd and backpropagates through the recomputation. The layer must be
// deterministic (it is: no dropout).
DecoderLayerOutput recomputed_decoder_layer(const DecoderLayerShape& shape, const Qwen2LayerWeights& w,
                                            const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                                            const torch::Tensor& mask, const torch::Tensor& keep,
                                            const torch::Tensor& past_k, const torch::Tensor& past_v);

// The layer for inference over N new tokens of different sequences laid end to end (x [N, C]; cos,
// sin [N, D]), as the generation engine's cached step runs it: every matrix product reads its weights
// once for all the tokens. `attend` gets the rotated queries q [N, H, D] and keys/values k, v [N, K, D]
// of the new tokens, stores the keys/values where it keeps them and returns the attention output
// [N, H * D]. No autograd.
using AttendFn = std::function<torch::Tensor(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v)>;
torch::Tensor decoder_layer_tokens(const DecoderLayerShape& shape, const Qwen2LayerWeights& w, const torch::Tensor& x,
                                   const torch::Tensor& cos, const torch::Tensor& sin, const AttendFn& attend);

}  // namespace torl::model
