#include "model/memory_plan.hpp"

#include <fstream>

#include <algorithm>
#include <iomanip>
#include <sstream>

namespace torl::model {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

std::string gib(int64_t bytes) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(bytes < kGiB / 10 ? 3 : 2) << static_cast<double>(bytes) / kGiB;
  return out.str();
}

}  // namespace

std::string format_gib(int64_t bytes) { return gib(bytes) + " GiB"; }

int64_t MemoryPlan::total() const {
  int64_t sum = 0;
  for (const auto& item : items) sum += item.bytes;
  return sum;
}

int64_t available_host_memory() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key, unit;
  int64_t kib = 0;
  while (meminfo >> key >> kib >> unit) {
    if (key == "MemAvailable:") return kib * 1024;
  }
  return -1;
}

int64_t MemoryPlan::bytes_of(const std::string& name) const {
  for (const auto& item : items) {
    if (item.name == name) return item.bytes;
  }
  return 0;
}

int64_t parameter_count(const Qwen2Config& c) {
  const int64_t C = c.hidden_size, I = c.intermediate_size, KD = c.num_key_value_heads * c.head_dim();
  const int64_t layer = C * C + C            // q (with bias)
                        + 2 * (C * KD + KD)  // k, v (with biases)
                        + C * C              // o
                        + 3 * C * I          // gate, up, down
                        + 2 * C;             // the two norms
  return c.vocab_size * C * (c.tie_word_embeddings ? 1 : 2) + c.num_hidden_layers * layer + C;
}

namespace {

// The generators' KV caches: layers x (k, v) x slots x length x kv heads x head dim, in model.dtype.
int64_t kv_cache_bytes(const MemoryPlanInput& in) {
  const Qwen2Config& c = in.model;
  return in.generators * c.num_hidden_layers * 2 * in.cache_slots * in.cache_length * c.num_key_value_heads *
         c.head_dim() * static_cast<int64_t>(c10::elementSize(in.dtype));
}

}  // namespace

MemoryPlan plan_memory(const MemoryPlanInput& in) {
  const auto& c = in.model;
  const int64_t b = static_cast<int64_t>(c10::elementSize(in.dtype));
  const int64_t P = parameter_count(c);
  const int64_t C = c.hidden_size, I = c.intermediate_size, H = c.num_attention_heads;
  const int64_t KD = c.num_key_value_heads * c.head_dim(), L = c.num_hidden_layers, V = c.vocab_size;
  const int64_t B = in.sequences, T = in.length, N = B * T;
  const int64_t master = in.master_copy ? 4 : b;  // bytes of a master weight

  MemoryPlan plan;
  const auto add = [&](std::string name, int64_t bytes, std::string how) {
    plan.items.push_back({std::move(name), bytes, std::move(how)});
  };
  add("policy weights", P * b, std::to_string(P) + " parameters");
  add("policy gradients", P * b, "one micro-batch's, in model.dtype");
  if (in.master_copy) {
    add("master weights", P * 4, "float32 (train.master_dtype)");
    add("master gradients", P * 4, "float32, summed over micro-batches and ranks");
  }
  add("AdamW state", 2 * P * master, "two moments per master weight");
  if (in.reference) add("reference model", P * b, "frozen (algorithm.kl_coef > 0)");
  const int64_t cache_bytes = kv_cache_bytes(in);
  const std::string cache_how = std::to_string(in.cache_slots) + " slots x " + std::to_string(in.cache_length) + " tokens";
  if (in.generators > 0 && in.separate) {
    add("weights broadcast", P * b, "one flat copy on its way to the generators' device");
  } else if (in.generators > 0) {
    // the generators' weights, and the learner's snapshot of the new weights on its way to them
    add("generators' weights", (in.generators + 1) * P * b, std::to_string(in.generators) + " generator(s) + the published snapshot");
    add("KV cache", cache_bytes, cache_how);
  }
  // What autograd keeps of one decoder layer per token (decoder_layer.cpp): each RMSNorm's float32
  // input, normalised and scaled outputs; q, k, v after RoPE and the attention output (SDPA); the
  // attention output reshaped for o_proj; the MLP's gate before and after SiLU, up, and their product;
  // SDPA's log-sum-exp. Per layer and micro-batch: the additive attention mask [B, 1, T, T].
  const int64_t per_token = 2 * (4 * C + 2 * C * b) + 3 * C * b + 2 * KD * b + 4 * I * b + 4 * H;
  const int64_t layer = N * per_token + B * T * T * b;
  const int64_t final_norm = N * (4 * C + 2 * C * b);
  if (in.gradient_checkpointing) {
    // the recomputed layer's activations and, while its backward runs, their gradients
    add("activations", L * N * C * b + B * T * T + 2 * layer + final_norm,
        "checkpointed: each layer's input, and one layer recomputed with its gradients in the backward");
  } else {
    add("activations", L * layer + final_norm, std::to_string(L) + " layers x " + std::to_string(N) + " tokens");
  }
  // The scored positions' logits in model.dtype and float32 [positions, vocabulary] buffers: all at
  // once, autograd keeps the log-softmax and the probabilities and the backward adds two gradients (4);
  // by chunks, the backward recomputes a chunk's logits, log-softmax and probabilities and forms the
  // gradients of the log-prob and the entropy beside them (8). (Both counts agree with torl train bench.)
  const int64_t positions = in.logits_chunk > 0 ? std::min(in.logits_chunk, N) : N;
  add("logits", positions * V * (b + (in.logits_chunk > 0 ? 32 : 16)),
      std::to_string(positions) + " positions x " + std::to_string(V) +
          (in.logits_chunk > 0 ? " (train.logits_chunk)" : " (all at once: train.logits_chunk 0)"));
  if (in.cache_freed && in.generators > 0 && !in.separate) {
    // Freed while the update runs: the cache and the update's activations and logits take turns.
    MemoryItem& cache = *std::find_if(plan.items.begin(), plan.items.end(), [](const auto& i) { return i.name == "KV cache"; });
    const int64_t update = plan.bytes_of("activations") + plan.bytes_of("logits");
    cache.bytes = std::max<int64_t>(0, cache_bytes - update);
    cache.how = cache_how + ", freed for the update (rollout.cache_during_update): only what exceeds its activations and logits";
  }
  return plan;
}

MemoryPlan plan_generator_memory(const MemoryPlanInput& in) {
  const Qwen2Config& c = in.model;
  const int64_t b = static_cast<int64_t>(c10::elementSize(in.dtype));
  const int64_t P = parameter_count(c);
  MemoryPlan plan;
  plan.items.push_back({"generators' weights", in.generators * P * b, std::to_string(in.generators) + " generator(s)"});
  plan.items.push_back({"weights arriving", 2 * P * b, "the version received and its flat buffer"});
  plan.items.push_back({"KV cache", kv_cache_bytes(in),
                        std::to_string(in.cache_slots) + " slots x " + std::to_string(in.cache_length) + " tokens"});
  return plan;
}

std::string format_memory_plan(const MemoryPlan& plan, const MemoryPlanInput& in, double device_gib) {
  std::ostringstream out;
  out << "| memory per device | GiB | counted as |\n|---|---|---|\n";
  for (const auto& item : plan.items) out << "| " << item.name << " | " << gib(item.bytes) << " | " << item.how << " |\n";
  out << "| **total** | **" << gib(plan.total()) << "** | without allocator slack and the runtime (CUDA context, LibTorch) |\n";
  if (device_gib <= 0) return out.str();
  const double need = static_cast<double>(plan.total()) / kGiB;
  // leave 10% for fragmentation and the runtime
  if (need <= 0.9 * device_gib) {
    out << "\nfits in " << device_gib << " GiB (" << std::fixed << std::setprecision(0) << 100 * need / device_gib << "% of it)\n";
    return out.str();
  }
  out << "\ndoes NOT fit in " << device_gib << " GiB: needs " << std::fixed << std::setprecision(1) << need
      << " GiB plus about 10% for fragmentation and the runtime. To shrink it:\n";
  std::vector<MemoryItem> largest = plan.items;
  std::sort(largest.begin(), largest.end(), [](const auto& a, const auto& b) { return a.bytes > b.bytes; });
  for (const auto& item : largest) {
    if (item.name == "activations") {
      out << (in.gradient_checkpointing ? "- activations: fewer tokens per micro-batch (train.micro_batch_tokens or train.micro_batch)\n"
                                        : "- activations: model.gradient_checkpointing: true, or fewer tokens per micro-batch\n");
    } else if (item.name == "logits") {
      out << "- logits: a smaller train.logits_chunk\n";
    } else if (item.name == "KV cache") {
      out << "- KV cache: fewer rollout.max_batch slots, or shorter data.max_prompt_tokens + rollout.max_response_tokens\n";
    } else if (item.name == "AdamW state") {
      out << "- AdamW state and master weights: each learner process holds them whole (--nproc does not shrink "
             "them); only train.master_dtype equal to model.dtype does, and it loses small updates\n";
    } else {
      continue;
    }
  }
  return out.str();
}

}  // namespace torl::model
