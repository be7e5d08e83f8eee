#include "model/decoder_layer.hpp"

#include <optional>

#include "model/attention.hpp"

namespace torl::model {
namespace {

// [..., D] -> [-x2, x1] with x1, x2 the two halves (the HF rotate_half convention).
torch::Tensor rotate_half(const torch::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

// The weights as a list (the autograd function's inputs) and back, in one fixed order.
constexpr size_t kWeights = 12;

std::vector<torch::Tensor> weight_list(const Qwen2LayerWeights& w) {
  return {w.input_norm, w.q_w, w.q_b, w.k_w, w.k_b, w.v_w, w.v_b, w.o_w, w.post_norm, w.gate_w, w.up_w, w.down_w};
}

Qwen2LayerWeights weights_from(const std::vector<torch::Tensor>& list) {
  Qwen2LayerWeights w;
  w.input_norm = list[0], w.q_w = list[1], w.q_b = list[2], w.k_w = list[3], w.k_b = list[4], w.v_w = list[5];
  w.v_b = list[6], w.o_w = list[7], w.post_norm = list[8], w.gate_w = list[9], w.up_w = list[10];
  w.down_w = list[11];
  return w;
}

// Gradient checkpointing of one layer. Inputs, in this order (the backward returns one gradient per
// input): x, the 12 weights, cos, sin, mask, keep, past_k, past_v (optional), the shape. Outputs: x, k, v.
struct RecomputedLayer : torch::autograd::Function<RecomputedLayer> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                                                torch::TensorList weights, const torch::Tensor& cos,
                                                const torch::Tensor& sin, const torch::Tensor& mask,
                                                const torch::Tensor& keep, const std::optional<torch::Tensor>& past_k,
                                                const std::optional<torch::Tensor>& past_v,
                                                const DecoderLayerShape& shape) {
    const torch::Tensor pk = past_k.value_or(torch::Tensor()), pv = past_v.value_or(torch::Tensor());
    std::vector<torch::Tensor> saved = {x, cos, sin, mask, keep, pk, pv};
    saved.insert(saved.end(), weights.begin(), weights.end());
    ctx->save_for_backward(saved);
    ctx->saved_data["heads"] = shape.heads;
    ctx->saved_data["kv_heads"] = shape.kv_heads;
    ctx->saved_data["head_dim"] = shape.head_dim;
    ctx->saved_data["eps"] = shape.rms_norm_eps;
    // Runs without autograd (as every custom function's forward does): nothing of the layer is kept.
    const auto out = decoder_layer(shape, weights_from(weights.vec()), x, cos, sin, mask, keep, pk, pv);
    return {out.x, out.k, out.v};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const DecoderLayerShape shape{ctx->saved_data["heads"].toInt(), ctx->saved_data["kv_heads"].toInt(),
                                  ctx->saved_data["head_dim"].toInt(), ctx->saved_data["eps"].toDouble()};
    // Leaves for the recomputation: x, the past keys/values and the weights; their gradients are the
    // function's.
    const auto leaf = [](const torch::Tensor& t) { return t.defined() ? t.detach().requires_grad_(true) : t; };
    const torch::Tensor x = leaf(saved[0]), past_k = leaf(saved[5]), past_v = leaf(saved[6]);
    std::vector<torch::Tensor> weights;
    for (size_t i = 0; i < kWeights; ++i) weights.push_back(leaf(saved[7 + i]));
    DecoderLayerOutput out;
    {
      torch::AutoGradMode enable(true);
      out = decoder_layer(shape, weights_from(weights), x, saved[1], saved[2], saved[3], saved[4], past_k, past_v);
    }
    std::vector<torch::Tensor> outputs, output_grads;
    const torch::Tensor produced[3] = {out.x, out.k, out.v};
    for (size_t i = 0; i < 3; ++i) {
      if (!grads[i].defined()) continue;
      outputs.push_back(produced[i]);
      output_grads.push_back(grads[i]);
    }
    std::vector<torch::Tensor> inputs = {x};
    inputs.insert(inputs.end(), weights.begin(), weights.end());
    if (past_k.defined()) inputs.push_back(past_k), inputs.push_back(past_v);
    const auto input_grads = torch::autograd::grad(outputs, inputs, output_grads, /*retain_graph=*/false,
                                                   /*create_graph=*/false, /*allow_unused=*/true);
    // x, the weights, cos, sin, mask, keep, past_k, past_v, shape.
    torch::autograd::variable_list result(1 + kWeights + 4 + 2 + 1);
    for (size_t i = 0; i <= kWeights; ++i) result[i] = input_grads[i];
    if (past_k.defined()) {
      result[1 + kWeights + 4] = input_grads[1 + kWeights];
      result[1 + kWeights + 5] = input_grads[2 + kWeights];
    }
    return result;
  }
};

}  // namespace

DecoderLayerOutput decoder_layer(const DecoderLayerShape& shape, const Qwen2LayerWeights& w, const torch::Tensor& x,
                                 const torch::Tensor& cos, const torch::Tensor& sin, const torch::Tensor& mask,
                                 const torch::Tensor& keep, const torch::Tensor& past_k, const torch::Tensor& past_v) {
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2);
  const int64_t H = shape.heads, K = shape.kv_heads, D = shape.head_dim;
  // The B x T tokens laid end to end through the one layer function; attention per row of the batch,
  // over its past, with q [B, H, T, D] and k/v [B, K, S, D].
  const auto tokens = [&](const torch::Tensor& table) { return table.squeeze(1).reshape({B * T, D}); };  // [B, 1, T, D]
  DecoderLayerOutput out;
  out.x = decoder_layer_tokens(shape, w, x.reshape({B * T, C}), tokens(cos), tokens(sin),
                               [&](const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
                                 out.k = k.view({B, T, K, D}).transpose(1, 2);
                                 out.v = v.view({B, T, K, D}).transpose(1, 2);
                                 if (past_k.defined()) {
                                   out.k = torch::cat({past_k, out.k}, 2);
                                   out.v = torch::cat({past_v, out.v}, 2);
                                 }
                                 const auto o = attention(q.view({B, T, H, D}).transpose(1, 2), out.k, out.v, mask) * keep;
                                 return o.transpose(1, 2).reshape({B * T, H * D});
                               })
              .view({B, T, C});
  return out;
}

DecoderLayerOutput recomputed_decoder_layer(const DecoderLayerShape& shape, const Qwen2LayerWeights& w,
                                            const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                                            const torch::Tensor& mask, const torch::Tensor& keep,
                                            const torch::Tensor& past_k, const torch::Tensor& past_v) {
  const auto optional = [](const torch::Tensor& t) { return t.defined() ? std::optional<torch::Tensor>(t) : std::nullopt; };
  // A TensorList, not the vector: the function tracks each weight as an input only through that overload.
  const std::vector<torch::Tensor> weights = weight_list(w);
  const auto out = RecomputedLayer::apply(x, torch::TensorList(weights), cos, sin, mask, keep, optional(past_k),
                                          optional(past_v), shape);
  return {out[0], out[1], out[2]};
}

torch::Tensor decoder_layer_tokens(const DecoderLayerShape& shape, const Qwen2LayerWeights& w, const torch::Tensor& x,
                                   const torch::Tensor& cos, const torch::Tensor& sin, const AttendFn& attend) {
  const int64_t N = x.size(0);
  const int64_t H = shape.heads, K = shape.kv_heads, D = shape.head_dim;
  const auto h = rms_norm(x, w.input_norm, shape.rms_norm_eps);
  auto q = torch::linear(h, w.q_w, w.q_b).view({N, H, D});
  auto k = torch::linear(h, w.k_w, w.k_b).view({N, K, D});
  const auto v = torch::linear(h, w.v_w, w.v_b).view({N, K, D});
  const auto c = cos.unsqueeze(1), s = sin.unsqueeze(1);  // [N, 1, D]
  q = q * c + rotate_half(q) * s;
  k = k * c + rotate_half(k) * s;
  const auto x1 = x + torch::linear(attend(q, k, v), w.o_w, {});
  const auto h2 = rms_norm(x1, w.post_norm, shape.rms_norm_eps);
  return x1 + torch::linear(torch::silu(torch::linear(h2, w.gate_w, {})) * torch::linear(h2, w.up_w, {}), w.down_w, {});
}

}  // namespace torl::model
