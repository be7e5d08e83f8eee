#include "model/logprobs.hpp"

namespace torl::model {

TokenLogprobs token_logprobs(const Qwen2Model& model, const torch::Tensor& input_ids,
                             const torch::Tensor& attention_mask,
                             const torch::Tensor& position_ids, double temperature, int64_t shared_prefix) {
  TORL_CHECK(input_ids.dim() == 2 && input_ids.size(1) >= 2,
             "token_logprobs: input_ids must be [B, T] with T >= 2");
  TORL_CHECK(temperature > 0, "token_logprobs: temperature must be > 0");
  const int64_t B = input_ids.size(0), T = input_ids.size(1), S = shared_prefix;
  TORL_CHECK(S >= 0 && S < T, "token_logprobs: shared_prefix must be in [0, T)");
  const auto dev = model.device();
  torch::Tensor logits;  // [B, T, V]
  if (S == 0 || B == 1) {
    logits = model.forward(input_ids, position_ids, attention_mask);
  } else {
    // The prefix once (row 0), its keys and values viewed by every row, then each row's remainder.
    const auto prefix_ids = input_ids.narrow(1, 0, S);
    TORL_CHECK((prefix_ids == prefix_ids.narrow(0, 0, 1)).all().item<bool>() &&
                   (attention_mask.narrow(1, 0, S) != 0).all().item<bool>(),
               "token_logprobs: the shared prefix differs between rows or has padding");
    std::vector<LayerKv> past;
    const auto head = model.forward(prefix_ids.narrow(0, 0, 1), position_ids.narrow(0, 0, 1).narrow(1, 0, S),
                                    attention_mask.narrow(0, 0, 1).narrow(1, 0, S), &past);
    for (LayerKv& kv : past) {
      kv.k = kv.k.expand({B, -1, -1, -1});
      kv.v = kv.v.expand({B, -1, -1, -1});
    }
    const auto tail = model.forward(input_ids.narrow(1, S, T - S), position_ids.narrow(1, S, T - S), attention_mask,
                                    &past);
    logits = torch::cat({head.expand({B, -1, -1}), tail}, 1);
  }

  // The distribution at t predicts ids[t+1].
  const auto softmax_dtype =
      model.dtype() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  auto scaled = logits.narrow(1, 0, T - 1).to(softmax_dtype);
  if (temperature != 1.0) scaled = scaled / temperature;
  const auto log_p = torch::log_softmax(scaled, -1);
  const auto targets = input_ids.to(dev).narrow(1, 1, T - 1);              // [B, T-1]
  const auto real = attention_mask.to(dev) != 0;                           // [B, T]
  const auto valid = real.narrow(1, 0, T - 1) & real.narrow(1, 1, T - 1);  // [B, T-1]

  TokenLogprobs out;
  const auto picked = log_p.gather(-1, targets.unsqueeze(-1)).squeeze(-1);
  const auto entropy = -(log_p.exp() * log_p).sum(-1);
  out.logprobs = picked.masked_fill(valid.logical_not(), 0.0);
  out.entropy = entropy.masked_fill(valid.logical_not(), 0.0);
  out.valid = valid;
  return out;
}

}  // namespace torl::model
