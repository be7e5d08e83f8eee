#include "model/logprobs.hpp"

namespace torl::model {
namespace {

// Log-prob of the target and entropy of softmax(z) for logits z [N, V] (already in the softmax dtype
// and divided by the temperature). Returns {logprob [N], entropy [N], p [N, V], log p [N, V]}.
struct SoftmaxParts {
  torch::Tensor logprob, entropy, p, log_p;
};

SoftmaxParts softmax_parts(const torch::Tensor& z, const torch::Tensor& targets) {
  SoftmaxParts parts;
  parts.log_p = torch::log_softmax(z, -1);
  parts.p = parts.log_p.exp();
  parts.logprob = parts.log_p.gather(-1, targets.unsqueeze(-1)).squeeze(-1);
  parts.entropy = -(parts.p * parts.log_p).sum(-1);
  return parts;
}

// The lm_head, softmax, target log-prob and entropy of N positions, `chunk` positions at a time, with a
// backward that recomputes each chunk's logits instead of keeping them. Inputs: hidden [N, C] (model
// dtype), the lm_head weight [V, C], targets [N] int64, the chunk size, the temperature, the softmax
// dtype. Outputs: logprob [N], entropy [N] in the softmax dtype.
//   d logprob / dz = onehot(target) - p;  d entropy / dz = -p * (log p + entropy)
struct ChunkedLogprobs : torch::autograd::Function<ChunkedLogprobs> {
  static torch::Tensor logits(const torch::Tensor& h, const torch::Tensor& weight, double temperature,
                              torch::ScalarType dtype) {
    auto z = torch::linear(h, weight, {}).to(dtype);
    return temperature != 1.0 ? z / temperature : z;
  }

  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& hidden,
                                                const torch::Tensor& weight, const torch::Tensor& targets,
                                                int64_t chunk, double temperature, torch::ScalarType dtype) {
    ctx->save_for_backward({hidden, weight, targets});
    ctx->saved_data["chunk"] = chunk;
    ctx->saved_data["temperature"] = temperature;
    ctx->saved_data["dtype"] = static_cast<int64_t>(dtype);
    const int64_t N = hidden.size(0);
    auto logprob = torch::empty({N}, hidden.options().dtype(dtype)), entropy = torch::empty_like(logprob);
    for (int64_t begin = 0; begin < N; begin += chunk) {
      const int64_t n = std::min(chunk, N - begin);
      const auto parts = softmax_parts(logits(hidden.narrow(0, begin, n), weight, temperature, dtype),
                                       targets.narrow(0, begin, n));
      logprob.narrow(0, begin, n).copy_(parts.logprob);
      entropy.narrow(0, begin, n).copy_(parts.entropy);
    }
    return {logprob, entropy};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &hidden = saved[0], &weight = saved[1], &targets = saved[2];
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    const double temperature = ctx->saved_data["temperature"].toDouble();
    const auto dtype = static_cast<torch::ScalarType>(ctx->saved_data["dtype"].toInt());
    const int64_t N = hidden.size(0);
    const torch::Tensor g_logprob = grads[0].defined() ? grads[0] : torch::zeros({N}, hidden.options().dtype(dtype));
    const torch::Tensor g_entropy = grads[1].defined() ? grads[1] : torch::zeros({N}, hidden.options().dtype(dtype));
    auto grad_hidden = torch::empty_like(hidden);
    auto grad_weight = torch::zeros(weight.sizes(), weight.options().dtype(dtype));  // accumulated in the softmax dtype
    for (int64_t begin = 0; begin < N; begin += chunk) {
      const int64_t n = std::min(chunk, N - begin);
      const auto h = hidden.narrow(0, begin, n);
      const auto parts = softmax_parts(logits(h, weight, temperature, dtype), targets.narrow(0, begin, n));
      auto dz = -parts.p * (parts.log_p + parts.entropy.unsqueeze(-1)) * g_entropy.narrow(0, begin, n).unsqueeze(-1);
      dz -= parts.p * g_logprob.narrow(0, begin, n).unsqueeze(-1);
      dz.scatter_add_(-1, targets.narrow(0, begin, n).unsqueeze(-1), g_logprob.narrow(0, begin, n).unsqueeze(-1));
      if (temperature != 1.0) dz /= temperature;
      grad_hidden.narrow(0, begin, n).copy_(torch::matmul(dz.to(weight.scalar_type()), weight));
      grad_weight += torch::matmul(dz.t(), h.to(dtype));
    }
    return {grad_hidden, grad_weight.to(weight.scalar_type()), torch::Tensor(), torch::Tensor(), torch::Tensor(),
            torch::Tensor()};
  }
};

}  // namespace

TokenLogprobs token_logprobs(const Qwen2Model& model, const torch::Tensor& input_ids,
                             const torch::Tensor& attention_mask, const torch::Tensor& position_ids,
                             const LogprobOptions& options) {
  TORL_CHECK(input_ids.dim() == 2 && input_ids.size(1) >= 2,
             "token_logprobs: input_ids must be [B, T] with T >= 2");
  TORL_CHECK(options.temperature > 0, "token_logprobs: temperature must be > 0");
  TORL_CHECK(options.chunk_positions >= 0, "token_logprobs: chunk_positions must be >= 0");
  const int64_t B = input_ids.size(0), T = input_ids.size(1), S = options.shared_prefix;
  TORL_CHECK(S >= 0 && S < T, "token_logprobs: shared_prefix must be in [0, T)");
  const auto dev = model.device();
  torch::Tensor hidden;  // [B, T, C]
  if (S == 0 || B == 1) {
    hidden = model.hidden_states(input_ids, position_ids, attention_mask);
  } else {
    // The prefix once (row 0), its keys and values viewed by every row, then each row's remainder.
    const auto prefix_ids = input_ids.narrow(1, 0, S);
    TORL_CHECK((prefix_ids == prefix_ids.narrow(0, 0, 1)).all().item<bool>() &&
                   (attention_mask.narrow(1, 0, S) != 0).all().item<bool>(),
               "token_logprobs: the shared prefix differs between rows or has padding");
    std::vector<LayerKv> past;
    const auto head = model.hidden_states(prefix_ids.narrow(0, 0, 1), position_ids.narrow(0, 0, 1).narrow(1, 0, S),
                                          attention_mask.narrow(0, 0, 1).narrow(1, 0, S), &past);
    for (LayerKv& kv : past) {
      kv.k = kv.k.expand({B, -1, -1, -1});
      kv.v = kv.v.expand({B, -1, -1, -1});
    }
    const auto tail = model.hidden_states(input_ids.narrow(1, S, T - S), position_ids.narrow(1, S, T - S),
                                          attention_mask, &past);
    hidden = torch::cat({head.expand({B, -1, -1}), tail}, 1);
  }

  // The distribution at t predicts ids[t+1]; only the wanted valid positions are computed.
  const auto softmax_dtype = model.dtype() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  const auto targets = input_ids.to(dev).narrow(1, 1, T - 1);              // [B, T-1]
  const auto real = attention_mask.to(dev) != 0;                           // [B, T]
  const auto valid = real.narrow(1, 0, T - 1) & real.narrow(1, 1, T - 1);  // [B, T-1]
  const auto computed = options.wanted.defined() ? valid & options.wanted.to(dev) : valid;
  const auto index = computed.reshape(-1).nonzero().squeeze(-1);          // [N]
  const auto rows = hidden.narrow(1, 0, T - 1).reshape({B * (T - 1), -1}).index_select(0, index);  // [N, C]
  const auto picked_targets = targets.reshape(-1).index_select(0, index);  // [N]

  torch::Tensor logprob, entropy;  // [N]
  if (options.chunk_positions > 0) {
    const auto out = ChunkedLogprobs::apply(rows, model.lm_head_weight(), picked_targets, options.chunk_positions,
                                            options.temperature, softmax_dtype);
    logprob = out[0], entropy = out[1];
  } else {
    auto z = model.logits(rows).to(softmax_dtype);
    if (options.temperature != 1.0) z = z / options.temperature;
    const auto parts = softmax_parts(z, picked_targets);
    logprob = parts.logprob, entropy = parts.entropy;
  }
  const auto zeros = torch::zeros({B * (T - 1)}, hidden.options().dtype(softmax_dtype));
  TokenLogprobs out;
  out.logprobs = zeros.index_put({index}, logprob).view({B, T - 1});
  out.entropy = zeros.index_put({index}, entropy).view({B, T - 1});
  out.valid = valid;
  return out;
}

}  // namespace torl::model
