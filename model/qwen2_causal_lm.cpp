#include "model/qwen2_causal_lm.hpp"

#include <algorithm>

#include "common/check.hpp"
#include "model/memory_plan.hpp"

namespace torl::model {

using torch::indexing::Slice;

Qwen2CausalLm::Qwen2CausalLm(const Qwen2Model& model, int64_t max_slots, int64_t max_length)
    : model_(model), max_length_(max_length), lengths_(static_cast<size_t>(max_slots), 0) {
  const auto& config = model.config();
  const auto options = torch::TensorOptions().dtype(model.dtype()).device(model.device());
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    cache_.push_back({torch::zeros({max_slots, config.num_key_value_heads, max_length, config.head_dim()}, options),
                      torch::zeros({max_slots, config.num_key_value_heads, max_length, config.head_dim()}, options)});
  }
}

Expected<std::unique_ptr<Qwen2CausalLm>> Qwen2CausalLm::create(const Qwen2Model& model, int64_t max_slots,
                                                               int64_t max_length) {
  const auto& config = model.config();
  if (max_slots < 1 || max_length < 2) {
    return invalid_argument("a KV cache needs at least 1 slot and 2 positions (asked for " + std::to_string(max_slots) +
                            " slots of " + std::to_string(max_length) + " tokens)");
  }
  if (config.max_position_embeddings > 0 && max_length > config.max_position_embeddings + 1) {
    return invalid_argument("sequences of up to " + std::to_string(max_length - 1) + " tokens are more than the " +
                            std::to_string(config.max_position_embeddings) +
                            " positions the model supports (max_position_embeddings)");
  }
  // layers x (k, v) x slots x kv heads x length x head dim, in doubles to see past int64
  const double bytes = 2.0 * static_cast<double>(config.num_hidden_layers) * static_cast<double>(max_slots) *
                       static_cast<double>(config.num_key_value_heads) * static_cast<double>(max_length) *
                       static_cast<double>(config.head_dim()) * static_cast<double>(c10::elementSize(model.dtype()));
  const int64_t available = model.device().is_cpu() ? available_host_memory() : -1;
  if (available >= 0 && bytes > static_cast<double>(available)) {
    return Status(StatusCode::kUnavailable,
                  "a KV cache of " + std::to_string(max_slots) + " slots x " + std::to_string(max_length) +
                      " tokens needs " + format_gib(static_cast<int64_t>(std::min(bytes, 9e18))) + ", more than the " +
                      format_gib(available) + " this machine has free");
  }
  try {
    return std::make_unique<Qwen2CausalLm>(model, max_slots, max_length);
  } catch (const c10::Error& e) {
    const std::string what = e.what_without_backtrace();
    return Status(StatusCode::kUnavailable, "allocating a KV cache of " + std::to_string(max_slots) + " slots x " +
                                                std::to_string(max_length) + " tokens (" +
                                                format_gib(static_cast<int64_t>(std::min(bytes, 9e18))) +
                                                ") failed: " + what.substr(0, what.find('\n')));
  }
}

namespace {

// Splits decoding rows (sorted by cache length) where that saves at least a quarter of the padded
// cache positions, at most twice deep (up to 4 groups): rows far apart in length would otherwise all
// be gathered and attended at the longest one's length.
void split_by_length(const std::vector<int64_t>& rows, const std::vector<int64_t>& length_of, int depth,
                     std::vector<std::vector<int64_t>>& groups) {
  const size_t n = rows.size();
  const auto length = [&](size_t i) { return length_of[static_cast<size_t>(rows[i])]; };
  size_t best = 0;
  int64_t best_cost = static_cast<int64_t>(n) * length(n - 1);
  for (size_t k = 2; depth < 2 && k + 2 <= n; ++k) {
    const int64_t cost = static_cast<int64_t>(k) * length(k - 1) + static_cast<int64_t>(n - k) * length(n - 1);
    if (cost < best_cost) best = k, best_cost = cost;
  }
  if (best == 0 || 4 * best_cost > 3 * static_cast<int64_t>(n) * length(n - 1)) {
    groups.push_back(rows);
    return;
  }
  split_by_length({rows.begin(), rows.begin() + static_cast<std::ptrdiff_t>(best)}, length_of, depth + 1, groups);
  split_by_length({rows.begin() + static_cast<std::ptrdiff_t>(best), rows.end()}, length_of, depth + 1, groups);
}

}  // namespace

void Qwen2CausalLm::truncate(int64_t slot, int64_t length) {
  int64_t& held = lengths_[static_cast<size_t>(slot)];
  TORL_CHECK(length >= 0 && length <= held, "truncating slot " + std::to_string(slot) + " of " + std::to_string(held) +
                                                " tokens to " + std::to_string(length));
  held = length;  // entries past a slot's length are never read, and the next extend overwrites them
}

torch::Tensor Qwen2CausalLm::extend(const std::vector<int64_t>& slots, const std::vector<std::vector<int64_t>>& tokens) {
  TORL_CHECK(!slots.empty() && slots.size() == tokens.size(), "extend: one token list per slot");
  std::vector<int64_t> decoding, prefilling;  // row numbers
  for (size_t i = 0; i < slots.size(); ++i) (tokens[i].size() == 1 ? decoding : prefilling).push_back(static_cast<int64_t>(i));
  std::vector<int64_t> length_of;  // by row
  for (const int64_t slot : slots) length_of.push_back(lengths_[static_cast<size_t>(slot)]);
  std::sort(decoding.begin(), decoding.end(), [&](int64_t a, int64_t b) {
    return length_of[static_cast<size_t>(a)] < length_of[static_cast<size_t>(b)];
  });
  std::vector<std::vector<int64_t>> groups;
  if (!prefilling.empty()) groups.push_back(prefilling);
  if (!decoding.empty()) split_by_length(decoding, length_of, 0, groups);
  if (groups.size() == 1) return extend_together(slots, tokens);  // every row in one forward

  torch::NoGradGuard no_grad;
  torch::Tensor logits;
  for (const std::vector<int64_t>& rows : groups) {
    std::vector<int64_t> some_slots;
    std::vector<std::vector<int64_t>> some_tokens;
    for (const int64_t row : rows) {
      some_slots.push_back(slots[static_cast<size_t>(row)]);
      some_tokens.push_back(tokens[static_cast<size_t>(row)]);
    }
    const torch::Tensor part = extend_together(some_slots, some_tokens);
    if (!logits.defined()) logits = torch::empty({static_cast<int64_t>(slots.size()), part.size(1)}, part.options());
    logits.index_copy_(0, torch::tensor(rows, torch::kInt64).to(part.device()), part);
  }
  return logits;
}

torch::Tensor Qwen2CausalLm::extend_together(const std::vector<int64_t>& slots,
                                             const std::vector<std::vector<int64_t>>& tokens) {
  torch::NoGradGuard no_grad;
  const int64_t batch = static_cast<int64_t>(slots.size());
  int64_t past = 0, fresh = 0;  // the longest cache and the most new tokens among these slots
  for (size_t i = 0; i < slots.size(); ++i) {
    past = std::max(past, lengths_[static_cast<size_t>(slots[i])]);
    fresh = std::max(fresh, static_cast<int64_t>(tokens[i].size()));
  }

  // ---- the batch: [past: cache | pad] [new: pad | tokens], built on the host in one pass ----
  std::vector<int64_t> ids(static_cast<size_t>(batch * fresh), 0), positions(ids.size(), 0);
  std::vector<int64_t> mask(static_cast<size_t>(batch * (past + fresh)), 0);
  bool one_token_each = true;  // the decode step: every row adds exactly one token
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t length = lengths_[static_cast<size_t>(slots[static_cast<size_t>(b)])];
    const auto& new_tokens = tokens[static_cast<size_t>(b)];
    const int64_t n = static_cast<int64_t>(new_tokens.size());
    TORL_CHECK(length + n <= max_length_, "extend: slot cache overflow");
    one_token_each = one_token_each && n == 1;
    for (int64_t t = 0; t < n; ++t) {
      ids[static_cast<size_t>(b * fresh + fresh - n + t)] = new_tokens[static_cast<size_t>(t)];
      positions[static_cast<size_t>(b * fresh + fresh - n + t)] = length + t;
    }
    const size_t row = static_cast<size_t>(b * (past + fresh));
    std::fill_n(mask.begin() + static_cast<std::ptrdiff_t>(row), length, 1);
    std::fill_n(mask.begin() + static_cast<std::ptrdiff_t>(row + past + fresh - n), n, 1);
  }
  const auto as_tensor = [](std::vector<int64_t>& values, int64_t rows) {
    return torch::from_blob(values.data(), {rows, static_cast<int64_t>(values.size()) / rows}, torch::kInt64);
  };
  const auto device = model_.device();
  const torch::Tensor slot_index = torch::tensor(slots, torch::kInt64).to(device);
  std::vector<LayerKv> kv;
  for (const auto& layer : cache_) {
    // narrow first: only the first `past` positions of each slot are copied
    kv.push_back({layer.k.narrow(2, 0, past).index_select(0, slot_index),
                  layer.v.narrow(2, 0, past).index_select(0, slot_index)});
  }

  // Only each row's last new position needs logits (the next token): the lm_head runs on those alone.
  const torch::Tensor hidden = model_.hidden_states(as_tensor(ids, batch).to(device),
                                                    as_tensor(positions, batch).to(device),
                                                    as_tensor(mask, batch).to(device), &kv);  // [B, fresh, C]

  // ---- each slot's new entries go into its cache, right after its old ones ----
  if (one_token_each) {
    // The decode step: one scatter per layer (row b's new entry goes to [slot_b, :, length_b]).
    std::vector<int64_t> at;
    for (const int64_t slot : slots) at.push_back(lengths_[static_cast<size_t>(slot)]);
    const torch::Tensor at_index = torch::tensor(at, torch::kInt64).to(device);
    for (size_t l = 0; l < cache_.size(); ++l) {
      cache_[l].k.index_put_({slot_index, Slice(), at_index}, kv[l].k.select(2, past));
      cache_[l].v.index_put_({slot_index, Slice(), at_index}, kv[l].v.select(2, past));
    }
    for (const int64_t slot : slots) ++lengths_[static_cast<size_t>(slot)];
  } else {
    for (int64_t b = 0; b < batch; ++b) {
      const int64_t slot = slots[static_cast<size_t>(b)];
      int64_t& length = lengths_[static_cast<size_t>(slot)];
      const int64_t n = static_cast<int64_t>(tokens[static_cast<size_t>(b)].size());
      for (size_t l = 0; l < cache_.size(); ++l) {
        cache_[l].k.index_put_({slot, Slice(), Slice(length, length + n)}, kv[l].k.index({b, Slice(), Slice(past + fresh - n, past + fresh)}));
        cache_[l].v.index_put_({slot, Slice(), Slice(length, length + n)}, kv[l].v.index({b, Slice(), Slice(past + fresh - n, past + fresh)}));
      }
      length += n;
    }
  }
  return model_.logits(hidden.select(1, fresh - 1));  // [B, V]: the last column is every row's last new token
}

}  // namespace torl::model
