#include "model/qwen2.hpp"

#include <cmath>
#include <set>
#include <sstream>

#include "common/json.hpp"
#include "model/attention.hpp"
#include "model/decoder_layer.hpp"
#include "model/memory_plan.hpp"

namespace torl::model {
namespace {

// ---- config.json ----

template <class T>
Status read_field(const Json& json, const std::string& key, const std::string& origin, T& out) {
  auto value = required_field<T>(json, key, origin);
  if (!value.ok()) return value.status();
  out = *value;
  return {};
}

// An optional integer id: absent or null gives -1; a list (several eos ids) gives its first entry.
Status read_token_id(const Json& json, const std::string& key, const std::string& origin,
                     int64_t& out) {
  out = -1;
  const auto it = json.find(key);
  if (it == json.end() || it->is_null()) return {};
  if (it->is_number_integer()) {
    out = it->get<int64_t>();
    return {};
  }
  if (it->is_array() && !it->empty() && (*it)[0].is_number_integer()) {
    out = (*it)[0].get<int64_t>();
    return {};
  }
  return invalid_argument(origin + ": field '" + key + "' must be an integer (got " +
                          json_type_name(*it) + ")");
}

std::string shape_string(torch::IntArrayRef shape) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? "," : "") << shape[i];
  out << "]";
  return out.str();
}

// ---- forward pieces ----


// The tensors of one decoder layer: the HF name after "model.layers.N.", where it lives, its shape.
// Loading, named_parameters() and random_weights() all read this one table.
struct LayerTensor {
  const char* name;
  torch::Tensor Qwen2LayerWeights::*member;
  std::vector<int64_t> shape;
};

std::vector<LayerTensor> layer_tensors(const Qwen2Config& config) {
  const int64_t C = config.hidden_size, I = config.intermediate_size;
  const int64_t Q = config.num_attention_heads * config.head_dim(), KV = config.num_key_value_heads * config.head_dim();
  using W = Qwen2LayerWeights;
  return {{"input_layernorm.weight", &W::input_norm, {C}},
          {"self_attn.q_proj.weight", &W::q_w, {Q, C}},
          {"self_attn.q_proj.bias", &W::q_b, {Q}},
          {"self_attn.k_proj.weight", &W::k_w, {KV, C}},
          {"self_attn.k_proj.bias", &W::k_b, {KV}},
          {"self_attn.v_proj.weight", &W::v_w, {KV, C}},
          {"self_attn.v_proj.bias", &W::v_b, {KV}},
          {"self_attn.o_proj.weight", &W::o_w, {C, Q}},
          {"post_attention_layernorm.weight", &W::post_norm, {C}},
          {"mlp.gate_proj.weight", &W::gate_w, {I, C}},
          {"mlp.up_proj.weight", &W::up_w, {I, C}},
          {"mlp.down_proj.weight", &W::down_w, {C, I}}};
}

}  // namespace

Json Qwen2Config::to_json() const {
  const auto id = [](int64_t v) { return v >= 0 ? Json(v) : Json(nullptr); };
  return {{"architectures", {"Qwen2ForCausalLM"}},
          {"model_type", "qwen2"},
          {"vocab_size", vocab_size},
          {"hidden_size", hidden_size},
          {"intermediate_size", intermediate_size},
          {"num_hidden_layers", num_hidden_layers},
          {"num_attention_heads", num_attention_heads},
          {"num_key_value_heads", num_key_value_heads},
          {"hidden_act", "silu"},
          {"max_position_embeddings", max_position_embeddings},
          {"rms_norm_eps", rms_norm_eps},
          {"rope_theta", rope_theta},
          {"tie_word_embeddings", tie_word_embeddings},
          {"use_sliding_window", false},
          {"sliding_window", nullptr},
          {"bos_token_id", id(bos_token_id)},
          {"eos_token_id", id(eos_token_id)},
          {"pad_token_id", id(pad_token_id)},
          {"torch_dtype", "float32"}};
}

Expected<Qwen2Config> Qwen2Config::load(const std::filesystem::path& config_json) {
  const std::string origin = config_json.string();
  auto parsed = read_json_file(config_json);
  if (!parsed.ok()) return parsed.status();
  const Json& json = *parsed;
  if (!json.is_object()) return invalid_argument(origin + ": expected a JSON object");

  if (const auto it = json.find("architectures"); it != json.end()) {
    if (!it->is_array() || it->size() != 1 || !(*it)[0].is_string() ||
        (*it)[0].get<std::string>() != "Qwen2ForCausalLM") {
      return invalid_argument(origin +
                              ": field 'architectures' must be [\"Qwen2ForCausalLM\"] (got " +
                              it->dump() + "); only Qwen2 models are supported");
    }
  }
  if (const auto it = json.find("hidden_act"); it != json.end()) {
    if (!it->is_string() || it->get<std::string>() != "silu") {
      return invalid_argument(origin + ": field 'hidden_act' must be \"silu\" (got " + it->dump() +
                              ")");
    }
  }
  if (const auto it = json.find("use_sliding_window"); it != json.end() && !it->is_null()) {
    if (!it->is_boolean() || it->get<bool>()) {
      return invalid_argument(origin + ": field 'use_sliding_window' is " + it->dump() +
                              "; sliding-window attention is not supported");
    }
  }

  Qwen2Config c;
  TORL_RETURN_IF_ERROR(read_field(json, "vocab_size", origin, c.vocab_size));
  TORL_RETURN_IF_ERROR(read_field(json, "hidden_size", origin, c.hidden_size));
  TORL_RETURN_IF_ERROR(read_field(json, "intermediate_size", origin, c.intermediate_size));
  TORL_RETURN_IF_ERROR(read_field(json, "num_hidden_layers", origin, c.num_hidden_layers));
  TORL_RETURN_IF_ERROR(read_field(json, "num_attention_heads", origin, c.num_attention_heads));
  TORL_RETURN_IF_ERROR(read_field(json, "num_key_value_heads", origin, c.num_key_value_heads));
  TORL_RETURN_IF_ERROR(read_field(json, "rms_norm_eps", origin, c.rms_norm_eps));
  TORL_RETURN_IF_ERROR(
      read_field(json, "max_position_embeddings", origin, c.max_position_embeddings));
  if (json.contains("tie_word_embeddings")) {
    TORL_RETURN_IF_ERROR(read_field(json, "tie_word_embeddings", origin, c.tie_word_embeddings));
  }
  if (json.contains("rope_theta")) {
    TORL_RETURN_IF_ERROR(read_field(json, "rope_theta", origin, c.rope_theta));
  } else if (const auto it = json.find("rope_parameters"); it != json.end()) {
    TORL_RETURN_IF_ERROR(read_field(*it, "rope_theta", origin + ": rope_parameters", c.rope_theta));
    if (const auto type = it->find("rope_type");
        type != it->end() && !(type->is_string() && type->get<std::string>() == "default")) {
      return invalid_argument(origin +
                              ": field 'rope_parameters.rope_type' must be \"default\" (got " +
                              type->dump() + ")");
    }
  } else {
    return invalid_argument(origin +
                            ": missing field 'rope_theta' (or 'rope_parameters.rope_theta')");
  }
  TORL_RETURN_IF_ERROR(read_token_id(json, "bos_token_id", origin, c.bos_token_id));
  TORL_RETURN_IF_ERROR(read_token_id(json, "eos_token_id", origin, c.eos_token_id));
  TORL_RETURN_IF_ERROR(read_token_id(json, "pad_token_id", origin, c.pad_token_id));

  const auto positive = [&](const char* key, int64_t value) -> Status {
    if (value > 0) return {};
    return invalid_argument(origin + ": field '" + key + "' must be > 0 (got " +
                            std::to_string(value) + ")");
  };
  TORL_RETURN_IF_ERROR(positive("vocab_size", c.vocab_size));
  TORL_RETURN_IF_ERROR(positive("hidden_size", c.hidden_size));
  TORL_RETURN_IF_ERROR(positive("intermediate_size", c.intermediate_size));
  TORL_RETURN_IF_ERROR(positive("num_hidden_layers", c.num_hidden_layers));
  TORL_RETURN_IF_ERROR(positive("num_attention_heads", c.num_attention_heads));
  TORL_RETURN_IF_ERROR(positive("num_key_value_heads", c.num_key_value_heads));
  if (c.hidden_size % c.num_attention_heads != 0 || c.head_dim() % 2 != 0) {
    return invalid_argument(origin + ": field 'hidden_size' (" + std::to_string(c.hidden_size) +
                            ") must be an even multiple of 'num_attention_heads' (" +
                            std::to_string(c.num_attention_heads) + ")");
  }
  if (c.num_attention_heads % c.num_key_value_heads != 0) {
    return invalid_argument(
        origin + ": field 'num_key_value_heads' (" + std::to_string(c.num_key_value_heads) +
        ") must divide 'num_attention_heads' (" + std::to_string(c.num_attention_heads) + ")");
  }
  if (!(c.rms_norm_eps > 0) || !(c.rope_theta > 0)) {
    return invalid_argument(origin + ": fields 'rms_norm_eps' and 'rope_theta' must be > 0");
  }
  return c;
}

// ---- loading ----

Expected<Qwen2Model> Qwen2Model::load(const std::filesystem::path& folder, torch::Device device,
                                      torch::ScalarType dtype) {
  const std::string context = "loading '" + folder.string() + "'";
  auto config = Qwen2Config::load(folder / "config.json");
  if (!config.ok()) return config.status().with_context(context);
  auto tensors = read_checkpoint(folder);
  if (!tensors.ok()) return tensors.status().with_context(context);
  return from_tensors(*config, *tensors, folder.string(), device, dtype);
}

Expected<Qwen2Model> Qwen2Model::from_tensors(const Qwen2Config& config, const TensorMap& tensors,
                                              const std::string& origin, torch::Device device,
                                              torch::ScalarType dtype) {
  const std::string context = "loading '" + origin + "'";
  const int64_t C = config.hidden_size, V = config.vocab_size, D = config.head_dim();
  std::set<std::string> used;
  Status error;
  // Returns the named tensor on device in dtype (an owned copy), or records the first error.
  const auto take = [&](const std::string& name, std::vector<int64_t> shape) -> torch::Tensor {
    if (!error.ok()) return {};
    const auto it = tensors.find(name);
    if (it == tensors.end()) {
      error = not_found(context + ": missing tensor " + name + " " + shape_string(shape));
      return {};
    }
    if (it->second.sizes() != torch::IntArrayRef(shape)) {
      error = invalid_argument(context + ": shape mismatch for " + name + " " +
                               shape_string(it->second.sizes()) + " vs " + shape_string(shape) +
                               " (from config.json)");
      return {};
    }
    if (!it->second.is_floating_point()) {
      error = invalid_argument(context + ": tensor " + name + " is not floating point");
      return {};
    }
    used.insert(name);
    try {
      torch::Tensor copy = it->second.to(device, dtype, /*non_blocking=*/false, /*copy=*/true);
      // NaN or inf in the weights would only show as garbage text: refuse them here, naming the tensor
      if (!torch::isfinite(copy).all().item<bool>()) {
        error = invalid_argument(context + ": tensor " + name + " has non-finite values (NaN or inf)");
        return {};
      }
      return copy;
    } catch (const std::exception& e) {
      error = io_error(context + ": copying " + name + " to " + device.str() + ": " + e.what());
      return {};
    }
  };

  Qwen2Model m;
  m.config_ = config;
  m.embed_tokens_ = take("model.embed_tokens.weight", {V, C});
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    Qwen2LayerWeights w;
    for (const auto& tensor : layer_tensors(config)) w.*tensor.member = take(p + tensor.name, tensor.shape);
    m.layers_.push_back(std::move(w));
  }
  m.final_norm_ = take("model.norm.weight", {C});
  if (config.tie_word_embeddings) {
    m.lm_head_ = m.embed_tokens_;
    // Some exporters write the tied head anyway; accept it when it equals the embedding.
    if (const auto it = tensors.find("lm_head.weight"); it != tensors.end() && error.ok()) {
      if (it->second.sizes() != m.embed_tokens_.sizes() ||
          !it->second.to(torch::kFloat32)
               .equal(tensors.at("model.embed_tokens.weight").to(torch::kFloat32))) {
        error = invalid_argument(context +
                                 ": lm_head.weight differs from model.embed_tokens.weight "
                                 "but config.json says tie_word_embeddings: true");
      }
      used.insert("lm_head.weight");
    }
  } else {
    m.lm_head_ = take("lm_head.weight", {V, C});
  }
  if (!error.ok()) return error;
  for (const auto& [name, tensor] : tensors) {
    if (!used.count(name)) {
      return invalid_argument(context + ": unexpected tensor " + name + " " +
                              shape_string(tensor.sizes()) + " (not part of " +
                              std::to_string(config.num_hidden_layers) + "-layer Qwen2)");
    }
  }
  // As HF: inv_freq = 1 / theta^(2i / D), in float32 whatever the model dtype.
  m.inv_freq_ = 1.0 / torch::pow(torch::tensor(config.rope_theta, torch::kFloat32),
                                 torch::arange(0, D, 2, torch::kInt64).to(torch::kFloat32) / D);
  m.inv_freq_ = m.inv_freq_.to(device);
  return m;
}

// ---- parameters ----

TensorMap Qwen2Model::named_parameters() const {
  TensorMap out;
  out["model.embed_tokens.weight"] = embed_tokens_;
  for (size_t l = 0; l < layers_.size(); ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    for (const auto& tensor : layer_tensors(config_)) out[p + tensor.name] = layers_[l].*tensor.member;
  }
  out["model.norm.weight"] = final_norm_;
  if (!config_.tie_word_embeddings) out["lm_head.weight"] = lm_head_;
  return out;
}

std::vector<torch::Tensor> Qwen2Model::parameters() const {
  std::vector<torch::Tensor> out;
  for (auto& [name, t] : named_parameters()) out.push_back(t);
  return out;
}

void Qwen2Model::set_requires_grad(bool requires_grad) {
  for (auto& t : parameters()) t.requires_grad_(requires_grad);
}

// ---- forward ----

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  // At least float32 (float64 stays float64, so that float64 finite-difference tests are exact).
  const auto x32 = x.to(torch::promote_types(x.scalar_type(), torch::kFloat32));
  const auto normed = x32 * torch::rsqrt(x32.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * normed.to(x.scalar_type());
}

torch::Tensor Qwen2Model::forward(const torch::Tensor& input_ids, const torch::Tensor& position_ids,
                                  const torch::Tensor& attention_mask,
                                  std::vector<LayerKv>* past) const {
  return logits(hidden_states(input_ids, position_ids, attention_mask, past));
}

std::pair<torch::Tensor, torch::Tensor> Qwen2Model::rotary(const torch::Tensor& positions) const {
  const auto freqs = positions.to(torch::kFloat32).unsqueeze(-1) * inv_freq_;  // [..., D/2]
  const auto emb = torch::cat({freqs, freqs}, -1);
  return {emb.cos().to(dtype()), emb.sin().to(dtype())};
}

torch::Tensor Qwen2Model::logits(const torch::Tensor& hidden) const { return torch::linear(hidden, lm_head_, {}); }

torch::Tensor Qwen2Model::hidden_states(const torch::Tensor& input_ids, const torch::Tensor& position_ids,
                                        const torch::Tensor& attention_mask, std::vector<LayerKv>* past) const {
  TORL_CHECK(input_ids.dim() == 2 && position_ids.sizes() == input_ids.sizes(),
             "forward: input_ids and position_ids must both be [B, T]");
  TORL_CHECK(past == nullptr || past->empty() ||
                 past->size() == static_cast<size_t>(config_.num_hidden_layers),
             "forward: past must be empty or hold one LayerKv per layer");
  if (past != nullptr && past->empty()) past->resize(config_.num_hidden_layers);
  const int64_t B = input_ids.size(0), T = input_ids.size(1);
  const int64_t P = (past != nullptr && (*past)[0].k.defined()) ? (*past)[0].k.size(2) : 0;
  const int64_t S = P + T;
  TORL_CHECK(
      attention_mask.dim() == 2 && attention_mask.size(0) == B && attention_mask.size(1) == S,
      "forward: attention_mask must be [B, past + T]");
  const auto dev = embed_tokens_.device();

  // Mask [B, 1, T, S]: causal and real keys. A query that may see no key (left padding) gets an
  // attention output of 0, as HF with torch >= 2.5 gives (its logits are then finite and equal to
  // HF's); it attends to every key and the result is zeroed with `sees_a_key`.
  const auto real = attention_mask.to(dev) != 0;  // [B, S]
  const auto query_pos = torch::arange(P, S, torch::TensorOptions(torch::kInt64).device(dev));
  const auto key_pos = torch::arange(0, S, torch::TensorOptions(torch::kInt64).device(dev));
  const auto causal = key_pos.unsqueeze(0) <= query_pos.unsqueeze(1);  // [T, S]
  const auto mask = causal.unsqueeze(0) & real.unsqueeze(1);           // [B, T, S]
  const auto sees_a_key = mask.any(-1, /*keepdim=*/true);              // [B, T, 1]
  const auto bias =
      additive_mask((mask | sees_a_key.logical_not()).unsqueeze(1), dtype());  // [B, 1, T, S]
  const auto keep = sees_a_key.unsqueeze(1).to(dtype());  // [B, 1, T, 1]

  // Rotary tables [B, 1, T, D].
  auto [cos, sin] = rotary(position_ids.to(dev));
  cos = cos.unsqueeze(1), sin = sin.unsqueeze(1);

  // Gradient checkpointing only where there is a backward to save memory for.
  const bool recompute = gradient_checkpointing_ && torch::GradMode::is_enabled() && embed_tokens_.requires_grad();
  const DecoderLayerShape shape{config_.num_attention_heads, config_.num_key_value_heads, config_.head_dim(),
                                config_.rms_norm_eps};
  auto x = torch::embedding(embed_tokens_, input_ids.to(dev));  // [B, T, C]
  for (size_t l = 0; l < layers_.size(); ++l) {
    LayerKv* kv = past ? &(*past)[l] : nullptr;
    const torch::Tensor past_k = kv ? kv->k : torch::Tensor(), past_v = kv ? kv->v : torch::Tensor();
    auto out = recompute ? recomputed_decoder_layer(shape, layers_[l], x, cos, sin, bias, keep, past_k, past_v)
                         : decoder_layer(shape, layers_[l], x, cos, sin, bias, keep, past_k, past_v);
    x = out.x;
    if (kv) *kv = {out.k, out.v};
  }
  return rms_norm(x, final_norm_, config_.rms_norm_eps);  // [B, T, C]
}

TensorMap random_weights(const Qwen2Config& config, const torch::TensorOptions& options) {
  const int64_t c = config.hidden_size;
  auto weight = [&](int64_t out, int64_t in) { return torch::randn({out, in}, options) * 0.02; };
  TensorMap tensors;
  tensors["model.embed_tokens.weight"] = weight(config.vocab_size, c);
  if (!config.tie_word_embeddings) tensors["lm_head.weight"] = weight(config.vocab_size, c);
  tensors["model.norm.weight"] = torch::ones({c}, options);
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    for (const auto& tensor : layer_tensors(config)) {
      const std::string_view name = tensor.name;
      tensors[p + tensor.name] = name.ends_with("layernorm.weight") ? torch::ones(tensor.shape, options)
                                 : name.ends_with(".bias")          ? torch::zeros(tensor.shape, options)
                                                                    : torch::randn(tensor.shape, options) * 0.02;
    }
  }
  return tensors;
}

Qwen2Config bench_model_config(int64_t vocabulary, int64_t max_positions) {
  Qwen2Config config;
  config.vocab_size = vocabulary;
  config.hidden_size = 256;
  config.intermediate_size = 704;
  config.num_hidden_layers = 4;
  config.num_attention_heads = 4;
  config.num_key_value_heads = 2;
  config.max_position_embeddings = max_positions;
  return config;
}

Expected<Qwen2Model> random_bench_model(torch::Device device, torch::ScalarType dtype) {
  return random_model(bench_model_config(), device, dtype);
}

Expected<Qwen2Model> random_model(const Qwen2Config& config, torch::Device device, torch::ScalarType dtype) {
  torch::manual_seed(0);
  try {
    const TensorMap tensors = random_weights(config, torch::TensorOptions().dtype(dtype).device(device));
    return Qwen2Model::from_tensors(config, tensors, "random model", device, dtype);
  } catch (const c10::Error& e) {
    const std::string what = e.what_without_backtrace();
    return Status(StatusCode::kUnavailable, "making a random model of " + std::to_string(parameter_count(config)) +
                                                " parameters failed: " + what.substr(0, what.find('\n')));
  }
}

}  // namespace torl::model
