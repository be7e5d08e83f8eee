// Qwen2ForCausalLM in LibTorch: the config (config.json), the weights, and the forward pass.
//
// The same code runs on CPU and CUDA in the config's dtype. Two uses: training (full sequences,
// autograd) and inference; attention goes through one function (attention.hpp), LibTorch's fused
// kernel. Tensor dimensions: B batch, T time, C hidden size, V vocabulary,
// H query heads, K key/value heads, D head size. A Qwen2Model is used by one thread at a time.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "common/json.hpp"
#include "common/status.hpp"
#include "model/safetensors.hpp"

namespace torl::model {

struct Qwen2Config {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;         // C
  int64_t intermediate_size = 0;   // MLP width
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;  // H
  int64_t num_key_value_heads = 0;  // K (grouped-query attention when K < H)
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;      // top level, or rope_parameters.rope_theta
  bool tie_word_embeddings = false;
  int64_t max_position_embeddings = 0;
  int64_t bos_token_id = -1, eos_token_id = -1, pad_token_id = -1;  // -1 when absent

  int64_t head_dim() const { return hidden_size / num_attention_heads; }  // D

  // Parses config.json; errors name the file and the key (missing, wrong type, unsupported value
  // such as another architecture, a sliding window in use, or a hidden_act other than silu).
  static Expected<Qwen2Config> load(const std::filesystem::path& config_json);

  // config.json as HF transformers writes it for a Qwen2ForCausalLM of this shape (load() reads it
  // back equal); token ids of -1 are written as null.
  Json to_json() const;
};

// Keys and values of one layer for the positions seen so far: [B, K, S_past, D] each (K key/value
// heads; attention reads them per group of query heads, without copies). The extension point for the generation engine: forward() appends the new
// positions' k/v to it. Undefined tensors mean "no past".
struct LayerKv {
  torch::Tensor k, v;
};

// The weights of one decoder layer, under the names (after "model.layers.N.") HF uses.
struct Qwen2LayerWeights {
  torch::Tensor input_norm;                         // input_layernorm.weight [C]
  // self_attn.{q,k,v,o}_proj: weights [out, in], biases [out]; o_proj has no bias.
  torch::Tensor q_w, q_b, k_w, k_b, v_w, v_b, o_w;
  torch::Tensor post_norm;                          // post_attention_layernorm.weight [C]
  torch::Tensor gate_w, up_w, down_w;               // mlp.{gate,up,down}_proj, no bias
};

// Qwen2ForCausalLM as plain tensors (no torch::nn::Module): the parameters keep their HF names
// (named_parameters()), so loading, saving and the optimizer see the checkpoint's own layout, and
// forward() is a plain function of them that autograd can differentiate.
//
// Tied embeddings: lm_head is the same tensor as embed_tokens (one parameter, listed once as
// model.embed_tokens.weight). Movable, not copyable in meaning (copies share the tensors).
// One thread at a time.
class Qwen2Model {
 public:
  // Reads folder/config.json and the checkpoint (read_checkpoint), checks that every expected
  // tensor is present with its shape and that none is left over, and copies the weights to
  // `device` in `dtype` (the model owns its memory; nothing views the file). Parameters do not require grad
  // until set_requires_grad(true). Errors start with "loading 'folder': " and name the tensor:
  //   loading 'dir': shape mismatch for lm_head.weight [1024,64] vs [1000,64]
  static Expected<Qwen2Model> load(const std::filesystem::path& folder, torch::Device device,
                                   torch::ScalarType dtype);

  // Builds from tensors already in memory (same checks and messages as load, with `origin` in
  // place of the folder).
  static Expected<Qwen2Model> from_tensors(const Qwen2Config& config, const TensorMap& tensors,
                                           const std::string& origin, torch::Device device,
                                           torch::ScalarType dtype);

  // logits [B, T, V] in the model dtype for
  //   input_ids      [B, T] int64
  //   position_ids   [B, T] int64 (the rotary position of each token; left padding shifts them)
  //   attention_mask [B, S] (1 = real token, 0 = padding), S = past length + T; any integer,
  //                  bool or float type.
  // Query t of row b attends to key s when s <= past length + t (causal) and the key is real.
  // A query that sees no real key (left padding) gets a zero attention output, as in HF, so its
  // logits are finite (and meaningless).
  // `past`: empty, or one LayerKv per layer; when given, the new k/v are appended to it.
  // Differentiable; runs under torch::NoGradGuard for inference.
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& position_ids,
                        const torch::Tensor& attention_mask,
                        std::vector<LayerKv>* past = nullptr) const;

  // forward() in two parts, for callers that need the logits of a few positions only (the generation
  // engine reads each row's last), so that the [B, T, V] logits are never made:
  // hidden_states() takes forward()'s arguments and returns the final hidden states [B, T, C] (after
  // the last norm); logits() maps hidden states [..., C] to logits [..., V].
  torch::Tensor hidden_states(const torch::Tensor& input_ids, const torch::Tensor& position_ids,
                              const torch::Tensor& attention_mask, std::vector<LayerKv>* past = nullptr) const;
  torch::Tensor logits(const torch::Tensor& hidden) const;
  // The lm_head weight [V, C] that logits() applies (the embedding when tied).
  const torch::Tensor& lm_head_weight() const { return lm_head_; }

  // The pieces of forward() for a caller that runs its own attention (Qwen2CausalLm's cached step).
  const std::vector<Qwen2LayerWeights>& layers() const { return layers_; }
  const torch::Tensor& embed_tokens() const { return embed_tokens_; }
  const torch::Tensor& final_norm() const { return final_norm_; }
  // The rotary tables cos, sin [..., D] at `positions` (int64 [...] on the model's device), computed in
  // float32 and cast to the model dtype (as forward() and HF do).
  std::pair<torch::Tensor, torch::Tensor> rotary(const torch::Tensor& positions) const;

  const Qwen2Config& config() const { return config_; }
  torch::Device device() const { return embed_tokens_.device(); }
  torch::ScalarType dtype() const { return embed_tokens_.scalar_type(); }

  // Every parameter once, under its HF name (lm_head.weight absent when tied).
  TensorMap named_parameters() const;
  std::vector<torch::Tensor> parameters() const;
  void set_requires_grad(bool requires_grad);

  // Gradient checkpointing per decoder layer (model.gradient_checkpointing): while autograd records
  // (grad mode on, parameters requiring grad), each layer keeps only its input and is run again in the
  // backward (decoder_layer.hpp), so activation memory is about one [B, T, C] per layer instead of all
  // of them, for about a third more compute. Same values and gradients. Off by default.
  void set_gradient_checkpointing(bool on) { gradient_checkpointing_ = on; }
  bool gradient_checkpointing() const { return gradient_checkpointing_; }

 private:
  Qwen2Model() = default;

  // ---- set once by load ----
  Qwen2Config config_;
  torch::Tensor embed_tokens_;  // model.embed_tokens.weight [V, C]
  std::vector<Qwen2LayerWeights> layers_;
  torch::Tensor final_norm_;    // model.norm.weight [C]
  torch::Tensor lm_head_;       // lm_head.weight [V, C]; the embed_tokens_ tensor when tied
  torch::Tensor inv_freq_;      // rotary 1/theta^(2i/D) [D/2], float32, on device

  // ---- set by the owner ----
  bool gradient_checkpointing_ = false;
};

// x * rsqrt(mean(x^2) + eps) computed in float32 (float64 for float64 x), cast back to x's dtype, times
// weight (as HF).
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);

// Random weights in the checkpoint layout of `config` (normal * 0.02 for matrices, ones for norms,
// zeros for biases; no lm_head when tied), for benchmarks that need a model of a given shape.
TensorMap random_weights(const Qwen2Config& config, const torch::TensorOptions& options);

// The benchmarks' shape: 4 layers, d=256, MLP 704, 4 heads / 2 kv heads, the given vocabulary, up to
// max_positions tokens.
Qwen2Config bench_model_config(int64_t vocabulary = 4096, int64_t max_positions = 4096);

// The benchmarks' model (bench_model_config()) with random weights (seed 0). Speed does not depend on
// the weights.
Expected<Qwen2Model> random_bench_model(torch::Device device, torch::ScalarType dtype);

// A model of `config`'s shape with random weights (random_weights(), seed 0), made on `device` in
// `dtype` directly: a benchmark at a real model's shape (its config.json, no weights) without a
// float32 copy of it in host memory.
Expected<Qwen2Model> random_model(const Qwen2Config& config, torch::Device device, torch::ScalarType dtype);

}  // namespace torl::model
