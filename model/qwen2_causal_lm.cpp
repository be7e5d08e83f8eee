#include "model/qwen2_causal_lm.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/check.hpp"
#include "model/attention.hpp"
#include "model/decoder_layer.hpp"
#include "model/memory_plan.hpp"

#ifdef TORL_WITH_CUDA
#include <map>

#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace torl::model {

using torch::indexing::Slice;

#ifdef TORL_WITH_CUDA
// The CUDA graphs of the padded decode step, one per (slots, keys) bucket, captured at first use into
// one memory pool (they never run at once; each output is read before the next replay). Each has its
// static input (the step's host plan, copied in from pinned memory) and output (the hidden states).
struct Qwen2CausalLm::DecodeGraphs {
  struct Graph {
    at::cuda::CUDAGraph graph;
    torch::Tensor pinned, meta, hidden;
  };
  std::map<std::pair<int64_t, int64_t>, std::unique_ptr<Graph>> graphs;
  c10::MempoolId_t pool = at::cuda::graph_pool_handle();
};
#else
struct Qwen2CausalLm::DecodeGraphs {};
#endif

Qwen2CausalLm::~Qwen2CausalLm() = default;

Qwen2CausalLm::Qwen2CausalLm(const Qwen2Model& model, int64_t max_slots, int64_t max_length)
    : model_(model), max_length_(max_length), lengths_(static_cast<size_t>(max_slots), 0),
      pad_decode_(model.device().is_cuda()), cuda_graphs_(model.device().is_cuda()) {
  allocate_cache();
}

void Qwen2CausalLm::allocate_cache() {
  const auto& config = model_.config();
  const auto options = torch::TensorOptions().dtype(model_.dtype()).device(model_.device());
  const int64_t slots = max_slots();
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    // One position past max_length: the scratch entry that idle slots of a padded decode batch write.
    cache_.push_back({torch::zeros({slots, config.num_key_value_heads, max_length_ + 1, config.head_dim()}, options),
                      torch::zeros({slots, config.num_key_value_heads, max_length_ + 1, config.head_dim()}, options)});
  }
}

bool Qwen2CausalLm::release_cache() {
  if (cache_.empty() || std::any_of(lengths_.begin(), lengths_.end(), [](int64_t held) { return held > 0; })) return false;
  graphs_.reset();  // they were captured on the cache's addresses
  cache_.clear();
  ++releases_;
  return true;
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
                       static_cast<double>(config.num_key_value_heads) * static_cast<double>(max_length + 1) *
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

void Qwen2CausalLm::truncate(int64_t slot, int64_t length) {
  int64_t& held = lengths_[static_cast<size_t>(slot)];
  TORL_CHECK(length >= 0 && length <= held, "truncating slot " + std::to_string(slot) + " of " + std::to_string(held) +
                                                " tokens to " + std::to_string(length));
  held = length;  // entries past a slot's length are never read, and the next extend overwrites them
}

namespace {

// Decode batches padded to these sizes (and caches attended to a multiple of kKeyBucket) when
// padding is on: few shapes, so that one CUDA graph per shape serves every step.
constexpr int64_t kKeyBucket = 256;

int64_t slot_bucket(int64_t span, int64_t max_slots) {
  int64_t bucket = 1;
  while (bucket < span) bucket *= 2;
  return std::min(bucket, max_slots);
}

}  // namespace

// One step's forward, planned on the host: the tokens laid end to end (the decoding rows' first, one
// each, then each chunk's), and the host half of what the device needs, copied there in one piece:
// ids [n] | positions [n] | slot of each token [n] | each row's last token [rows] | the decoding rows'
// slots [decoders] | keys each slot of [0, span) attends [span].
struct Qwen2CausalLm::StepPlan {
  int64_t n = 0, rows = 0, decoders = 0;
  int64_t span = 0;     // the decoding rows attend as one batch over slots [0, span)
  int64_t longest = 0;  // ... over their first `longest` cache positions
  bool dense = false;   // the decoding rows are slots 0..span-1 in order: no scatter, no gather
  struct Chunk {
    int64_t slot, length, count;  // the slot, what its cache held, the tokens it adds
  };
  std::vector<Chunk> chunks;
  std::vector<int64_t> host;
};

torch::Tensor Qwen2CausalLm::extend(const std::vector<int64_t>& slots, const std::vector<std::vector<int64_t>>& tokens) {
  TORL_CHECK(!slots.empty() && slots.size() == tokens.size(), "extend: one token list per slot");
  torch::NoGradGuard no_grad;
  if (cache_.empty()) allocate_cache();  // released while idle (release_cache)
  const int64_t rows = static_cast<int64_t>(slots.size());
  const auto length = [&](int64_t row) { return lengths_[static_cast<size_t>(slots[static_cast<size_t>(row)])]; };
  const auto count = [&](int64_t row) { return static_cast<int64_t>(tokens[static_cast<size_t>(row)].size()); };
  bool decode_only = true;
  for (int64_t row = 0; row < rows; ++row) {
    TORL_CHECK(count(row) >= 1 && length(row) + count(row) <= max_length_, "extend: slot cache overflow");
    decode_only = decode_only && count(row) == 1;
  }

  torch::Tensor logits;
  if (decode_only && pad_decode_) {
    // Padded: every slot of [0, bucket) decodes; the idle ones feed token 0 at the scratch position
    // and attend one key. Their logits are dropped.
    int64_t span = 0, longest = 0;
    for (int64_t row = 0; row < rows; ++row) {
      span = std::max(span, slots[static_cast<size_t>(row)] + 1);
      longest = std::max(longest, length(row) + 1);
    }
    StepPlan plan;
    plan.n = plan.rows = plan.decoders = plan.span = slot_bucket(span, max_slots());
    plan.longest = std::min(max_length_ + 1, (longest + kKeyBucket - 1) / kKeyBucket * kKeyBucket);
    plan.dense = true;
    const int64_t S = plan.span;
    plan.host.assign(static_cast<size_t>(6 * S), 0);
    int64_t* h = plan.host.data();
    for (int64_t s = 0; s < S; ++s) {
      h[S + s] = max_length_;  // the scratch position
      h[2 * S + s] = h[3 * S + s] = h[4 * S + s] = s;
      h[5 * S + s] = 1;
    }
    for (int64_t row = 0; row < rows; ++row) {
      const int64_t slot = slots[static_cast<size_t>(row)];
      h[slot] = tokens[static_cast<size_t>(row)][0];
      h[S + slot] = length(row);
      h[3 * S + row] = slot;  // the caller's row `row` is the padded batch's row `slot`
      h[5 * S + slot] = length(row) + 1;
    }
    logits = model_.logits(run_padded(plan, rows));
  } else {
    StepPlan plan = plan_step(slots, tokens);
    const torch::Tensor meta =
        torch::from_blob(plan.host.data(), {static_cast<int64_t>(plan.host.size())}, torch::kInt64).to(model_.device());
    logits = model_.logits(hidden_states(plan, meta).index_select(0, meta.narrow(0, 3 * plan.n, plan.rows)));
  }
  for (int64_t row = 0; row < rows; ++row) lengths_[static_cast<size_t>(slots[static_cast<size_t>(row)])] += count(row);
  ++forwards_;
  rows_ += rows;
  return logits;  // [rows, V]
}

Qwen2CausalLm::StepPlan Qwen2CausalLm::plan_step(const std::vector<int64_t>& slots,
                                                  const std::vector<std::vector<int64_t>>& tokens) const {
  StepPlan plan;
  plan.rows = static_cast<int64_t>(slots.size());
  const auto length = [&](int64_t row) { return lengths_[static_cast<size_t>(slots[static_cast<size_t>(row)])]; };
  const auto count = [&](int64_t row) { return static_cast<int64_t>(tokens[static_cast<size_t>(row)].size()); };
  std::vector<int64_t> decoding, chunked;  // row numbers
  for (int64_t row = 0; row < plan.rows; ++row) {
    plan.n += count(row);
    if (count(row) == 1) {
      decoding.push_back(row);
      plan.span = std::max(plan.span, slots[static_cast<size_t>(row)] + 1);
      plan.longest = std::max(plan.longest, length(row) + 1);
    } else {
      chunked.push_back(row);
    }
  }
  plan.decoders = static_cast<int64_t>(decoding.size());
  const int64_t n = plan.n, span = plan.span;
  plan.host.assign(static_cast<size_t>(3 * n + plan.rows + plan.decoders + span), 0);
  int64_t* ids = plan.host.data();
  int64_t* positions = ids + n;
  int64_t* slot_of = positions + n;
  int64_t* last = slot_of + n;
  int64_t* decode_slots = last + plan.rows;
  int64_t* keys = decode_slots + plan.decoders;
  std::fill_n(keys, span, 1);  // slots in the span that do not decode attend one (ignored) key
  int64_t at = 0;
  plan.dense = span == plan.decoders;
  for (const int64_t row : decoding) {
    const int64_t slot = slots[static_cast<size_t>(row)];
    ids[at] = tokens[static_cast<size_t>(row)][0], positions[at] = length(row), slot_of[at] = slot, last[row] = at;
    decode_slots[at] = slot;
    keys[slot] = length(row) + 1;
    plan.dense = plan.dense && slot == at;
    ++at;
  }
  for (const int64_t row : chunked) {
    plan.chunks.push_back({slots[static_cast<size_t>(row)], length(row), count(row)});
    for (int64_t t = 0; t < count(row); ++t, ++at) {
      ids[at] = tokens[static_cast<size_t>(row)][static_cast<size_t>(t)];
      positions[at] = length(row) + t;
      slot_of[at] = slots[static_cast<size_t>(row)];
    }
    last[row] = at - 1;
  }
  return plan;
}

torch::Tensor Qwen2CausalLm::run_padded(const StepPlan& plan, int64_t rows) {
  torch::Tensor host = torch::from_blob(const_cast<int64_t*>(plan.host.data()), {static_cast<int64_t>(plan.host.size())},
                                        torch::kInt64);
#ifdef TORL_WITH_CUDA
  if (cuda_graphs_ && model_.device().is_cuda()) {
    if (!graphs_) graphs_ = std::make_unique<DecodeGraphs>();
    auto& graph = graphs_->graphs[{plan.span, plan.longest}];
    if (!graph) {
      // First use of this shape: a warm-up run (cuBLAS handles, workspaces) and the capture, on a side
      // stream. Both write the same keys/values the replay writes again.
      graph = std::make_unique<DecodeGraphs::Graph>();
      graph->pinned = host.clone().pin_memory();
      graph->meta = host.to(model_.device());
      torch::cuda::synchronize();
      const c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool(false, model_.device().index());
      {
        const c10::cuda::CUDAStreamGuard guard(side);
        hidden_states(plan, graph->meta);
        graph->graph.capture_begin(graphs_->pool, cudaStreamCaptureModeThreadLocal);
        graph->hidden = hidden_states(plan, graph->meta);
        graph->graph.capture_end();
      }
      side.synchronize();
      ++graphs_captured_;
    }
    std::memcpy(graph->pinned.data_ptr<int64_t>(), plan.host.data(), plan.host.size() * sizeof(int64_t));
    graph->meta.copy_(graph->pinned, /*non_blocking=*/true);
    graph->graph.replay();
    return graph->hidden.index_select(0, graph->meta.narrow(0, 3 * plan.n, rows));
  }
#endif
  const torch::Tensor meta = host.to(model_.device());
  return hidden_states(plan, meta).index_select(0, meta.narrow(0, 3 * plan.n, rows));
}

torch::Tensor Qwen2CausalLm::hidden_states(const StepPlan& plan, const torch::Tensor& meta) {
  const int64_t n = plan.n, rows = plan.rows, decoders = plan.decoders, span = plan.span, longest = plan.longest;
  const torch::Tensor id_t = meta.narrow(0, 0, n), position_t = meta.narrow(0, n, n), slot_t = meta.narrow(0, 2 * n, n);
  const torch::Tensor decode_slot_t = meta.narrow(0, 3 * n + rows, decoders);
  const auto device = model_.device();

  // ---- what every layer shares ----
  const auto& config = model_.config();
  const int64_t H = config.num_attention_heads, K = config.num_key_value_heads, D = config.head_dim();
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  torch::Tensor cos, sin;  // [n, D]
  std::tie(cos, sin) = model_.rotary(position_t);
  torch::Tensor decode_bias;  // [span, 1, 1, longest] float32: 0 for a slot's keys, -inf past them
  if (decoders > 0) {
    const torch::Tensor key_t = meta.narrow(0, 3 * n + rows + decoders, span);
    const auto seen = torch::arange(longest, key_t.options()).unsqueeze(0) < key_t.unsqueeze(1);
    decode_bias = additive_mask(seen, torch::kFloat32).view({span, 1, 1, longest});
  }
  std::vector<torch::Tensor> chunk_masks;  // per chunk [count, length + count] bool: causal
  for (const auto& chunk : plan.chunks) {
    const auto options = torch::TensorOptions(torch::kInt64).device(device);
    const auto query_pos = torch::arange(chunk.length, chunk.length + chunk.count, options);
    chunk_masks.push_back(torch::arange(chunk.length + chunk.count, options).unsqueeze(0) <= query_pos.unsqueeze(1));
  }

  // Attention of one layer: the new keys/values go into the cache in place, then every query attends
  // over its slot's cache as a view (no copy of the past). The decoding rows together, as one batch
  // over the slots [0, span) with per-slot lengths and the query heads grouped by key/value head
  // (no copy per head); each chunk (a prompt, a resumed sequence's tool output) on its own.
  const auto attend = [&](size_t layer, const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
    torch::Tensor& cache_k = cache_[layer].k;
    torch::Tensor& cache_v = cache_[layer].v;
    cache_k.index_put_({slot_t, Slice(), position_t}, k);
    cache_v.index_put_({slot_t, Slice(), position_t}, v);
    std::vector<torch::Tensor> out;
    if (decoders > 0) {
      torch::Tensor qd = q.narrow(0, 0, decoders);  // [decoders, H, D]
      if (!plan.dense) qd = torch::zeros({span, H, D}, q.options()).index_copy_(0, decode_slot_t, qd);
      const auto past_k = cache_k.narrow(0, 0, span).narrow(2, 0, longest);  // [span, K, longest, D]
      const auto past_v = cache_v.narrow(0, 0, span).narrow(2, 0, longest);
      const auto scores = torch::matmul(qd.view({span, K, H / K, D}), past_k.transpose(2, 3));  // [span, K, G, longest]
      const auto probs = torch::softmax(scores.to(torch::kFloat32) * scale + decode_bias, -1).to(q.scalar_type());
      torch::Tensor o = torch::matmul(probs, past_v).view({span, H * D});
      if (!plan.dense) o = o.index_select(0, decode_slot_t);
      out.push_back(o);
    }
    int64_t offset = decoders;
    for (size_t c = 0; c < plan.chunks.size(); ++c) {
      const auto& chunk = plan.chunks[c];
      const int64_t seen = chunk.length + chunk.count;
      const auto qc = q.narrow(0, offset, chunk.count).transpose(0, 1).unsqueeze(0);  // [1, H, count, D]
      const auto kc = cache_k.select(0, chunk.slot).narrow(1, 0, seen).unsqueeze(0);  // [1, K, seen, D]
      const auto vc = cache_v.select(0, chunk.slot).narrow(1, 0, seen).unsqueeze(0);
      out.push_back(attention(qc, kc, vc, chunk_masks[c]).squeeze(0).transpose(0, 1).reshape({chunk.count, H * D}));
      offset += chunk.count;
    }
    return out.size() == 1 ? out[0] : torch::cat(out);
  };

  const DecoderLayerShape shape{H, K, D, config.rms_norm_eps};
  torch::Tensor x = torch::embedding(model_.embed_tokens(), id_t);  // [n, C]
  for (size_t l = 0; l < model_.layers().size(); ++l) {
    x = decoder_layer_tokens(shape, model_.layers()[l], x, cos, sin,
                             [&](const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
                               return attend(l, q, k, v);
                             });
  }
  return rms_norm(x, model_.final_norm(), config.rms_norm_eps);  // [n, C]
}

}  // namespace torl::model
