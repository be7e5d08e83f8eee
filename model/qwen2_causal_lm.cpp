#include "model/qwen2_causal_lm.hpp"

#include <algorithm>

#include "common/check.hpp"

namespace torl::model {

Qwen2CausalLm::Qwen2CausalLm(const Qwen2Model& model, int64_t max_slots, int64_t max_length)
    : model_(model), max_length_(max_length), caches_(static_cast<size_t>(max_slots)) {}

void Qwen2CausalLm::clear(int64_t slot) { caches_[static_cast<size_t>(slot)] = SlotCache(); }

torch::Tensor Qwen2CausalLm::extend(const std::vector<int64_t>& slots, const std::vector<std::vector<int64_t>>& tokens) {
  TORL_CHECK(!slots.empty() && slots.size() == tokens.size(), "extend: one token list per slot");
  torch::NoGradGuard no_grad;
  const auto& config = model_.config();
  const int64_t batch = static_cast<int64_t>(slots.size());
  const int64_t layers = config.num_hidden_layers;
  const int64_t heads = config.num_key_value_heads, head_dim = config.head_dim();
  int64_t past = 0, fresh = 0;  // the longest cache and the most new tokens among these slots
  for (size_t i = 0; i < slots.size(); ++i) {
    past = std::max(past, caches_[static_cast<size_t>(slots[i])].length);
    fresh = std::max(fresh, static_cast<int64_t>(tokens[i].size()));
  }

  // ---- the batch, left-padded: [past: pad | cache] [new: pad | tokens] ----
  const auto device = model_.device();
  const auto long_cpu = torch::TensorOptions().dtype(torch::kInt64);
  torch::Tensor ids = torch::zeros({batch, fresh}, long_cpu);
  torch::Tensor positions = torch::zeros({batch, fresh}, long_cpu);
  torch::Tensor mask = torch::zeros({batch, past + fresh}, long_cpu);
  std::vector<LayerKv> kv(static_cast<size_t>(layers));
  const auto cache_options = torch::TensorOptions().dtype(model_.dtype()).device(device);
  for (int64_t l = 0; l < layers; ++l) {
    kv[static_cast<size_t>(l)].k = torch::zeros({batch, heads, past, head_dim}, cache_options);
    kv[static_cast<size_t>(l)].v = torch::zeros({batch, heads, past, head_dim}, cache_options);
  }
  for (int64_t b = 0; b < batch; ++b) {
    const SlotCache& cache = caches_[static_cast<size_t>(slots[static_cast<size_t>(b)])];
    const auto& new_tokens = tokens[static_cast<size_t>(b)];
    const int64_t n = static_cast<int64_t>(new_tokens.size());
    TORL_CHECK(cache.length + n <= max_length_, "extend: slot cache overflow");
    for (int64_t t = 0; t < n; ++t) {
      ids[b][fresh - n + t] = new_tokens[static_cast<size_t>(t)];
      positions[b][fresh - n + t] = cache.length + t;
    }
    mask.index_put_({b, torch::indexing::Slice(past - cache.length, past)}, 1);
    mask.index_put_({b, torch::indexing::Slice(past + fresh - n, past + fresh)}, 1);
    for (int64_t l = 0; l < layers && cache.length > 0; ++l) {
      kv[static_cast<size_t>(l)].k.index_put_({b, torch::indexing::Slice(), torch::indexing::Slice(past - cache.length, past)},
                                              cache.layers[static_cast<size_t>(l)].k[0]);
      kv[static_cast<size_t>(l)].v.index_put_({b, torch::indexing::Slice(), torch::indexing::Slice(past - cache.length, past)},
                                              cache.layers[static_cast<size_t>(l)].v[0]);
    }
  }

  const torch::Tensor logits = model_.forward(ids.to(device), positions.to(device), mask.to(device), &kv);  // [B, fresh, V]

  // ---- each slot keeps its real entries: old cache, then its new tokens ----
  for (int64_t b = 0; b < batch; ++b) {
    SlotCache& cache = caches_[static_cast<size_t>(slots[static_cast<size_t>(b)])];
    const int64_t n = static_cast<int64_t>(tokens[static_cast<size_t>(b)].size());
    cache.layers.resize(static_cast<size_t>(layers));
    for (int64_t l = 0; l < layers; ++l) {
      for (const bool is_k : {true, false}) {
        const torch::Tensor& all = is_k ? kv[static_cast<size_t>(l)].k : kv[static_cast<size_t>(l)].v;  // [B, K, past+fresh, D]
        const torch::Tensor row = all.slice(0, b, b + 1);
        const torch::Tensor kept = torch::cat({row.slice(2, past - cache.length, past),
                                               row.slice(2, past + fresh - n, past + fresh)}, 2);
        (is_k ? cache.layers[static_cast<size_t>(l)].k : cache.layers[static_cast<size_t>(l)].v) = kept.contiguous();
      }
    }
    cache.length += n;
  }
  return logits.select(1, fresh - 1);  // the last column is every row's last new token
}

}  // namespace torl::model
