// The model's checks on a CUDA device (issue #6), built and run on the GPU machine by
// tools/device/cuda_check.sh against the LibTorch bundled with pip's torch. Prints each measurement;
// exits 1 when a check fails.
//   cuda_check FIXTURES_DIR
#include <chrono>
#include <cstdio>
#include <iostream>

#include "model/generation_engine.hpp"
#include "model/logprobs.hpp"
#include "model/qwen2_causal_lm.hpp"

using namespace torl::model;
using Clock = std::chrono::steady_clock;

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
  std::cout << (ok ? "PASS " : "FAIL ") << what << std::endl;
  failures += ok ? 0 : 1;
}

void fixture_checks(const std::string& fixtures, const char* name, torch::Device device) {
  auto model = Qwen2Model::load(fixtures + "/" + name, device, torch::kFloat32);
  if (!model) return check(false, std::string(name) + ": load: " + model.status().message());
  auto reference = read_safetensors(fixtures + "/" + name + "/reference.safetensors");
  if (!reference) return check(false, std::string(name) + ": reference: " + reference.status().message());
  const auto& ref = *reference;
  torch::NoGradGuard no_grad;
  const torch::Tensor ids = ref.at("input_ids").to(device), mask = ref.at("attention_mask").to(device),
                      positions = ref.at("position_ids").to(device);
  const torch::Tensor logits = model->forward(ids, positions, mask).cpu();
  const double logit_error = (logits - ref.at("logits")).abs().max().item<double>();
  check(logit_error < 1e-4, std::string(name) + ": logits max |diff| vs float32 reference = " + std::to_string(logit_error));
  const TokenLogprobs lp = token_logprobs(*model, ids, mask, positions);
  const torch::Tensor valid = lp.valid.cpu();
  const double lp_error =
      ((lp.logprobs.cpu().to(torch::kFloat64) - ref.at("token_logprobs")) * valid).abs().max().item<double>();
  check(lp_error < 1e-4, std::string(name) + ": token log-probs max |diff| = " + std::to_string(lp_error));

  // Greedy generation of the left-padded prompt batch, through the engine, on the device.
  const torch::Tensor prompts = ref.at("prompt_ids"), prompt_mask = ref.at("prompt_mask"), greedy = ref.at("greedy_ids");
  Qwen2CausalLm lm(*model, 4, 64);
  const Tokenizer tokenizer = Tokenizer::byte_level({});
  GenerationEngine engine(lm, tokenizer);
  for (int64_t row = 0; row < prompts.size(0); ++row) {
    GenerationRequest request;
    request.id = row;
    for (int64_t t = 0; t < prompts.size(1); ++t) {
      if (prompt_mask[row][t].item<int64_t>()) request.prompt.push_back(prompts[row][t].item<int64_t>());
    }
    request.max_new_tokens = 16;
    request.sampling.temperature = 0;
    if (!engine.admit(request).ok()) return check(false, "admit");
  }
  std::vector<std::vector<int64_t>> out(static_cast<size_t>(prompts.size(0)));
  while (engine.running() > 0) {
    for (const auto& update : engine.step()) {
      out[static_cast<size_t>(update.id)].insert(out[static_cast<size_t>(update.id)].end(), update.tokens.begin(), update.tokens.end());
    }
  }
  bool same = true;
  for (int64_t row = 0; row < prompts.size(0); ++row) {
    for (int64_t t = 0; t < 16; ++t) same = same && out[static_cast<size_t>(row)][static_cast<size_t>(t)] == greedy[row][prompts.size(1) + t].item<int64_t>();
  }
  check(same, std::string(name) + ": greedy generation through the engine equals HF greedy_ids");

  auto bf16 = Qwen2Model::load(fixtures + "/" + name, device, torch::kBFloat16);
  if (bf16) {
    const double error = (bf16->forward(ids, positions, mask).cpu().to(torch::kFloat32) - ref.at("logits")).abs().max().item<double>();
    std::cout << "INFO " << name << ": bfloat16 logits max |diff| = " << error << std::endl;
  }
}

// Engine throughput at the Qwen2.5-1.5B shape with random weights, bfloat16.
void bench(torch::Device device, int64_t batch, int64_t prompt_len, int64_t new_tokens) {
  Qwen2Config config;
  config.vocab_size = 151936;
  config.hidden_size = 1536;
  config.intermediate_size = 8960;
  config.num_hidden_layers = 28;
  config.num_attention_heads = 12;
  config.num_key_value_heads = 2;
  config.rope_theta = 10000;
  config.tie_word_embeddings = true;
  config.max_position_embeddings = 4096;
  TensorMap tensors = random_weights(config, torch::TensorOptions().dtype(torch::kBFloat16).device(device));
  auto model = Qwen2Model::from_tensors(config, tensors, "random 1.5B", device, torch::kBFloat16);
  if (!model) return check(false, "bench model: " + model.status().message());
  tensors.clear();
  Qwen2CausalLm lm(*model, batch, prompt_len + new_tokens + 1);
  const Tokenizer tokenizer = Tokenizer::byte_level({});
  GenerationEngine engine(lm, tokenizer);
  for (int64_t b = 0; b < batch; ++b) {
    GenerationRequest request;
    request.id = b;
    for (int64_t t = 0; t < prompt_len; ++t) request.prompt.push_back((b * 7919 + t * 104729) % config.vocab_size);
    request.max_new_tokens = new_tokens;
    request.sampling.temperature = 1.0;
    request.seed = static_cast<uint64_t>(b);
    engine.admit(request);
  }
  torch::cuda::synchronize();
  const auto start = Clock::now();
  engine.step();
  torch::cuda::synchronize();
  const auto prefilled = Clock::now();
  int64_t steps = 0;
  while (!engine.step().empty()) ++steps;
  torch::cuda::synchronize();
  const double prefill_s = std::chrono::duration<double>(prefilled - start).count();
  const double decode_s = std::chrono::duration<double>(Clock::now() - prefilled).count();
  std::printf("BENCH Qwen2.5-1.5B shape bf16 batch %ld prompt %ld new %ld: prefill %.0f tok/s, decode %.0f tok/s (%.1f ms/step)\n",
              batch, prompt_len, new_tokens, batch * prompt_len / prefill_s, batch * steps / decode_s, decode_s * 1000 / steps);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return std::cerr << "usage: cuda_check FIXTURES_DIR\n", 2;
  if (!torch::cuda::is_available()) return std::cerr << "CUDA is not available\n", 2;
  const torch::Device device(torch::kCUDA, 0);
  for (const char* name : {"tiny-qwen2", "tiny-qwen2-tied"}) fixture_checks(argv[1], name, device);
  for (const int64_t batch : {1, 64}) bench(device, batch, 128, 64);
  std::cout << (failures == 0 ? "ALL PASS" : "FAILURES: " + std::to_string(failures)) << std::endl;
  return failures == 0 ? 0 : 1;
}
