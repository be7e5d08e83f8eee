// The Qwen2 forward and token log-probs against references written by HF transformers
// (../shared/fixtures/tiny-qwen2{,-tied}/reference.safetensors), and the errors of config and
// weight loading.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "common/json.hpp"
#include "model/attention.hpp"
#include "model/logprobs.hpp"
#include "model/qwen2.hpp"
#include "model/safetensors.hpp"
#include "tests/temp_dir.hpp"

// After the LibTorch headers: glog (through c10) defines its own CHECK, which would otherwise
// silently replace doctest's (an aborting check that doctest does not count or report).
#include <doctest/doctest.h>

#include <limits>

namespace torl::model {
namespace {

std::filesystem::path fixture(const std::string& name) {
  return std::filesystem::path(TORL_SOURCE_DIR) / ".." / "shared" / "fixtures" / name;
}

// The fixture's model and reference tensors; fails the test (with the path) when missing.
struct Fixture {
  Qwen2Model model;
  TensorMap ref;
};

Fixture load_fixture(const std::string& name) {
  const auto dir = fixture(name);
  INFO("fixture folder: " << dir.string() << " (see ../shared/fixtures)");
  REQUIRE(std::filesystem::exists(dir / "reference.safetensors"));
  auto model = Qwen2Model::load(dir, torch::kCPU, torch::kFloat32);
  REQUIRE_MESSAGE(model.ok(), model.status().to_string());
  auto ref = read_safetensors(dir / "reference.safetensors");
  REQUIRE_MESSAGE(ref.ok(), ref.status().to_string());
  return {std::move(*model), std::move(*ref)};
}

// Max |a - b| over the positions where `where` is true and the reference b is finite.
double max_abs_error(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& where) {
  const auto a64 = a.detach().to(torch::kFloat64), b64 = b.to(torch::kFloat64);
  const auto keep = where & torch::isfinite(b64);
  return (a64 - b64).abs().masked_select(keep).max().item<double>();
}

std::string read_text(const std::filesystem::path& file) {
  std::ifstream in(file);
  return {std::istreambuf_iterator<char>(in), {}};
}

// Writes the tiny fixture's config.json with `edit` applied and returns the error of loading it.
std::string config_error(const std::function<void(Json&)>& edit) {
  auto json = Json::parse(read_text(fixture("tiny-qwen2") / "config.json"));
  edit(json);
  testing::TempDir dir;
  const auto file = dir.write("config.json", json.dump());
  const auto config = Qwen2Config::load(file);
  REQUIRE_FALSE(config.ok());
  CHECK(config.status().message().find(file.string()) != std::string::npos);
  return config.status().message();
}

TEST_SUITE("model") {
  TEST_CASE("attention equals softmax(q k^T / sqrt(D) + mask) v, bool or additive mask") {
    torch::manual_seed(0);
    const auto q = torch::randn({2, 3, 4, 8}), k = torch::randn({2, 3, 6, 8});
    const auto v = torch::randn({2, 3, 6, 8});
    const auto allowed = torch::rand({2, 1, 4, 6}) > 0.4;
    allowed.select(3, 0).fill_(true);  // every query sees at least one key
    const auto scores = torch::matmul(q, k.transpose(-1, -2)) / std::sqrt(8.0);
    const auto expected =
        torch::matmul(torch::softmax(scores.masked_fill(allowed.logical_not(), -1e30), -1), v);
    CHECK(torch::allclose(attention(q, k, v, allowed), expected, 1e-5, 1e-5));
    CHECK(torch::allclose(attention(q, k, v, additive_mask(allowed, torch::kFloat32)), expected,
                          1e-5, 1e-5));
    const auto unmasked = torch::matmul(torch::softmax(scores, -1), v);
    CHECK(torch::allclose(attention(q, k, v, {}), unmasked, 1e-5, 1e-5));
  }

  TEST_CASE("config.json of the tiny fixtures is read, rope_theta from rope_parameters") {
    const auto config = Qwen2Config::load(fixture("tiny-qwen2") / "config.json");
    REQUIRE_MESSAGE(config.ok(), config.status().to_string());
    CHECK(config->vocab_size == 1024);
    CHECK(config->hidden_size == 64);
    CHECK(config->intermediate_size == 176);
    CHECK(config->num_hidden_layers == 2);
    CHECK(config->num_attention_heads == 4);
    CHECK(config->num_key_value_heads == 2);
    CHECK(config->head_dim() == 16);
    CHECK(config->rms_norm_eps == doctest::Approx(1e-6));
    CHECK(config->rope_theta == 10000.0);
    CHECK_FALSE(config->tie_word_embeddings);
    CHECK(config->pad_token_id == 0);
    CHECK(config->eos_token_id == 2);
    const auto tied = Qwen2Config::load(fixture("tiny-qwen2-tied") / "config.json");
    REQUIRE_MESSAGE(tied.ok(), tied.status().to_string());
    CHECK(tied->tie_word_embeddings);

    auto json = Json::parse(read_text(fixture("tiny-qwen2") / "config.json"));
    json.erase("rope_parameters");
    json["rope_theta"] = 1000000.0;
    testing::TempDir dir;
    const auto top_level = Qwen2Config::load(dir.write("config.json", json.dump()));
    REQUIRE_MESSAGE(top_level.ok(), top_level.status().to_string());
    CHECK(top_level->rope_theta == 1000000.0);

    // to_json is read back as the same config (missing bos_token_id stays missing)
    const auto again = Qwen2Config::load(dir.write("again.json", config->to_json().dump()));
    REQUIRE_MESSAGE(again.ok(), again.status().to_string());
    CHECK(again->to_json() == config->to_json());
    CHECK(again->pad_token_id == 0);
    CHECK(again->bos_token_id == config->bos_token_id);
  }

  TEST_CASE("config errors name the file and the key") {
    CHECK(config_error([](Json& j) { j.erase("hidden_size"); }).find("'hidden_size'") !=
          std::string::npos);
    CHECK(config_error([](Json& j) { j["num_key_value_heads"] = "two"; })
              .find("'num_key_value_heads' must be an integer") != std::string::npos);
    CHECK(config_error([](Json& j) { j["architectures"] = {"LlamaForCausalLM"}; })
              .find("'architectures'") != std::string::npos);
    CHECK(config_error([](Json& j) { j["use_sliding_window"] = true; })
              .find("'use_sliding_window'") != std::string::npos);
    CHECK(config_error([](Json& j) { j["hidden_act"] = "gelu"; }).find("'hidden_act'") !=
          std::string::npos);
    CHECK(config_error([](Json& j) { j.erase("rope_parameters"); }).find("'rope_theta'") !=
          std::string::npos);
    CHECK(config_error([](Json& j) { j["num_key_value_heads"] = 3; })
              .find("'num_key_value_heads'") != std::string::npos);
  }

  TEST_CASE("a missing, misshapen or unexpected tensor is named") {
    const auto dir = fixture("tiny-qwen2");
    const auto config = Qwen2Config::load(dir / "config.json");
    REQUIRE(config.ok());
    const auto tensors = read_checkpoint(dir);
    REQUIRE_MESSAGE(tensors.ok(), tensors.status().to_string());

    auto missing = *tensors;
    REQUIRE(missing.erase("model.layers.1.self_attn.k_proj.bias") == 1);
    const auto a = Qwen2Model::from_tensors(*config, missing, "dir", torch::kCPU, torch::kFloat32);
    REQUIRE_FALSE(a.ok());
    CHECK((a.status().code() == StatusCode::kNotFound));
    CHECK(a.status().message() ==
          "loading 'dir': missing tensor model.layers.1.self_attn.k_proj.bias [32]");

    auto misshapen = *tensors;
    misshapen["lm_head.weight"] = torch::zeros({1000, 64});
    const auto b =
        Qwen2Model::from_tensors(*config, misshapen, "dir", torch::kCPU, torch::kFloat32);
    REQUIRE_FALSE(b.ok());
    CHECK(b.status().message() ==
          "loading 'dir': shape mismatch for lm_head.weight [1000,64] vs [1024,64] "
          "(from config.json)");

    auto extra = *tensors;
    extra["model.layers.2.input_layernorm.weight"] = torch::zeros({64});
    const auto c = Qwen2Model::from_tensors(*config, extra, "dir", torch::kCPU, torch::kFloat32);
    REQUIRE_FALSE(c.ok());
    CHECK(c.status().message().find("unexpected tensor model.layers.2.input_layernorm.weight") !=
          std::string::npos);

    auto poisoned = *tensors;  // NaN weights would only show as garbage text
    auto weight = poisoned.at("model.layers.0.mlp.up_proj.weight").clone();
    weight.index_put_({3, 5}, std::numeric_limits<float>::quiet_NaN());
    poisoned["model.layers.0.mlp.up_proj.weight"] = weight;
    const auto d = Qwen2Model::from_tensors(*config, poisoned, "dir", torch::kCPU, torch::kFloat32);
    REQUIRE_FALSE(d.ok());
    CHECK(d.status().message() == "loading 'dir': tensor model.layers.0.mlp.up_proj.weight has non-finite values (NaN or inf)");

    const auto no_folder = Qwen2Model::load(dir / "nope", torch::kCPU, torch::kFloat32);
    REQUIRE_FALSE(no_folder.ok());
    CHECK(no_folder.status().message().find("nope") != std::string::npos);
  }

  TEST_CASE("tied embeddings: lm_head is the embedding, listed once") {
    auto f = load_fixture("tiny-qwen2-tied");
    const auto params = f.model.named_parameters();
    CHECK(params.count("lm_head.weight") == 0);
    CHECK(params.count("model.embed_tokens.weight") == 1);
    CHECK(params.size() == 1 + 2 * 12 + 1);  // embed_tokens, 2 layers x 12, norm
    const auto untied = load_fixture("tiny-qwen2").model.named_parameters();
    CHECK(untied.count("lm_head.weight") == 1);
    CHECK(untied.size() == params.size() + 1);
  }

  TEST_CASE("logits match the HF float32 reference on all three rows, padded ones included") {
    for (const std::string name : {"tiny-qwen2", "tiny-qwen2-tied"}) {
      INFO(name);
      auto f = load_fixture(name);
      const auto mask = f.ref.at("attention_mask");
      torch::Tensor logits;
      {
        torch::NoGradGuard no_grad;
        logits = f.model.forward(f.ref.at("input_ids"), f.ref.at("position_ids"), mask);
      }
      REQUIRE(logits.sizes() == f.ref.at("logits").sizes());
      const auto real = (mask != 0).unsqueeze(-1).expand_as(logits);
      const double vs32 = max_abs_error(logits, f.ref.at("logits"), real);
      const double vs64 = max_abs_error(logits, f.ref.at("logits64"), real);
      MESSAGE(name << ": max |logits - reference| at real tokens = " << vs32 << " (float32), "
                   << vs64 << " (float64)");
      CHECK(vs32 < 1e-4);
      CHECK(vs64 < 1e-4);
      // Padding positions too: a left-padding query (no key to see) gets HF's zero attention
      // output.
      const auto everywhere = torch::ones_like(real);
      const double all32 = max_abs_error(logits, f.ref.at("logits"), everywhere);
      MESSAGE(name << ": max |logits - reference| at every position = " << all32 << " (float32)");
      CHECK(all32 < 1e-4);
      // Each row on its own gives the same logits: padding does not leak into real tokens.
      for (int64_t b = 0; b < 3; ++b) {
        torch::NoGradGuard no_grad;
        const auto row = f.model.forward(f.ref.at("input_ids").narrow(0, b, 1),
                                         f.ref.at("position_ids").narrow(0, b, 1),
                                         mask.narrow(0, b, 1));
        CHECK(max_abs_error(row, logits.narrow(0, b, 1), real.narrow(0, b, 1)) < 1e-5);
      }
      CHECK(torch::isfinite(logits).all().item<bool>());  // padded rows too
    }
  }

  TEST_CASE("token log-probs match the reference and gradients reach every parameter") {
    for (const std::string name : {"tiny-qwen2", "tiny-qwen2-tied"}) {
      INFO(name);
      auto f = load_fixture(name);
      f.model.set_requires_grad(true);
      const auto mask = f.ref.at("attention_mask");
      const auto out =
          token_logprobs(f.model, f.ref.at("input_ids"), mask, f.ref.at("position_ids"));
      REQUIRE(out.logprobs.sizes() == f.ref.at("token_logprobs").sizes());
      REQUIRE(out.entropy.sizes() == out.logprobs.sizes());
      const double err = max_abs_error(out.logprobs, f.ref.at("token_logprobs"), out.valid);
      MESSAGE(name << ": max |token log-prob - reference| = " << err);
      CHECK(err < 1e-4);
      // Padded positions are exactly 0; real ones are proper log-probs and entropies.
      CHECK(out.logprobs.masked_select(out.valid.logical_not()).abs().sum().item<double>() == 0.0);
      CHECK(out.entropy.masked_select(out.valid.logical_not()).abs().sum().item<double>() == 0.0);
      CHECK(out.logprobs.masked_select(out.valid).max().item<double>() < 0.0);
      CHECK(out.entropy.masked_select(out.valid).min().item<double>() > 0.0);
      CHECK(out.entropy.max().item<double>() <= std::log(1024.0) + 1e-4);
      // Entropy from the float64 reference logits at the valid positions.
      const auto ref_logp = torch::log_softmax(f.ref.at("logits64").narrow(1, 0, 11), -1);
      const auto ref_entropy = -(ref_logp.exp() * ref_logp).sum(-1);
      CHECK(max_abs_error(out.entropy, ref_entropy, out.valid) < 1e-4);

      const auto loss = out.logprobs.sum() / out.valid.sum();
      loss.backward();
      for (const auto& [param, tensor] : f.model.named_parameters()) {
        INFO(param);
        REQUIRE(tensor.grad().defined());
        CHECK(torch::isfinite(tensor.grad()).all().item<bool>());
        CHECK(tensor.grad().abs().sum().item<double>() > 0.0);
      }
    }
  }

  TEST_CASE("bfloat16 weights run the same code and stay near the float32 reference") {
    const auto dir = fixture("tiny-qwen2");
    auto model = Qwen2Model::load(dir, torch::kCPU, torch::kBFloat16);
    REQUIRE_MESSAGE(model.ok(), model.status().to_string());
    CHECK((model->dtype() == torch::kBFloat16));
    auto ref = read_safetensors(dir / "reference.safetensors");
    REQUIRE(ref.ok());
    torch::NoGradGuard no_grad;
    const auto mask = ref->at("attention_mask");
    const auto logits = model->forward(ref->at("input_ids"), ref->at("position_ids"), mask);
    CHECK((logits.scalar_type() == torch::kBFloat16));
    const auto real = (mask != 0).unsqueeze(-1).expand_as(logits);
    const double err = max_abs_error(logits, ref->at("logits"), real);
    MESSAGE("bfloat16: max |logits - float32 reference| = " << err);
    CHECK(err < 0.1);
  }

  TEST_CASE("a forward in two pieces through the k/v extension point equals one forward") {
    auto f = load_fixture("tiny-qwen2");
    torch::NoGradGuard no_grad;
    const auto ids = f.ref.at("input_ids"), pos = f.ref.at("position_ids");
    const auto mask = f.ref.at("attention_mask");
    const auto full = f.model.forward(ids, pos, mask);
    std::vector<LayerKv> past;
    const auto first = f.model.forward(ids.narrow(1, 0, 7), pos.narrow(1, 0, 7),
                                       mask.narrow(1, 0, 7), &past);
    REQUIRE(past.size() == 2);
    CHECK((past[0].k.sizes() == torch::IntArrayRef({3, 2, 7, 16})));
    const auto second = f.model.forward(ids.narrow(1, 7, 5), pos.narrow(1, 7, 5), mask, &past);
    const auto real = (mask != 0).unsqueeze(-1).expand_as(full);
    CHECK(max_abs_error(torch::cat({first, second}, 1), full, real) < 1e-5);
  }
}

}  // namespace
}  // namespace torl::model
