// Test helpers for the learner's tests (policy_trainer_test, data_parallel_test, checkpoint_test): the
// tiny fixture model, and batches of PolicySamples whose old log-probs sit near the model's own.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "model/logprobs.hpp"
#include "model/policy_trainer.hpp"
#include "model/qwen2.hpp"

// After the LibTorch headers: glog (through c10) defines its own CHECK (see qwen2_test.cpp).
#include <doctest/doctest.h>

namespace torl::testing {

using model::PolicySample;
using model::Qwen2Model;

// ../shared/fixtures/tiny-qwen2 on the CPU; the test fails saying where the fixture should be.
inline Qwen2Model load_tiny(torch::ScalarType dtype = torch::kFloat64) {
  const auto dir = std::filesystem::path(TORL_SOURCE_DIR) / ".." / "shared" / "fixtures" / "tiny-qwen2";
  INFO("fixture folder: " << dir.string() << " is missing (see ../shared/fixtures)");
  REQUIRE(std::filesystem::exists(dir / "model.safetensors"));
  auto model = Qwen2Model::load(dir, torch::kCPU, dtype);
  REQUIRE_MESSAGE(model.ok(), model.status().to_string());
  return std::move(*model);
}

// The log-probs of `s.response` under `model` at `temperature` (one sequence, no grad).
inline std::vector<double> response_logprobs(const Qwen2Model& model, const PolicySample& s, double temperature) {
  torch::NoGradGuard no_grad;
  std::vector<int64_t> ids(s.prompt.begin(), s.prompt.end());
  ids.insert(ids.end(), s.response.begin(), s.response.end());
  const auto T = static_cast<int64_t>(ids.size());
  const auto input = torch::tensor(ids, torch::kInt64).unsqueeze(0);
  const auto lp = model::token_logprobs(model, input, torch::ones({1, T}, torch::kInt64),
                                 torch::arange(T, torch::kInt64).unsqueeze(0), {.temperature = temperature});
  std::vector<double> out;
  for (size_t j = 0; j < s.response.size(); ++j) {
    out.push_back(lp.logprobs[0][static_cast<int64_t>(s.prompt.size() + j) - 1].item<double>());
  }
  return out;
}

// How a batch looks: per sample a prompt length, a response length and an advantage; response token
// t is tool output (mask 0) when t % tool_every == tool_at; old log-probs are the model's own at
// `temperature` plus an offset uniform in [-offset, +offset] (so some ratios are clipped).
struct SampleShape {
  uint32_t seed = 1;
  std::vector<int> prompt_len, response_len;
  std::vector<float> advantage;
  int tool_every = 4, tool_at = 2;
  double offset = 0.5;
  double temperature = 1.0;
};

// Random token ids (< 1024, the fixture's vocabulary) from a small LCG, the same on every machine.
inline std::vector<PolicySample> make_policy_samples(const Qwen2Model& model, const SampleShape& shape) {
  std::vector<PolicySample> samples;
  uint32_t state = shape.seed;
  auto next = [&] { return state = state * 1664525u + 1013904223u, state >> 8; };
  for (size_t i = 0; i < shape.prompt_len.size(); ++i) {
    PolicySample s;
    for (int t = 0; t < shape.prompt_len[i]; ++t) s.prompt.push_back(static_cast<int32_t>(next() % 1024));
    for (int t = 0; t < shape.response_len[i]; ++t) {
      s.response.push_back(static_cast<int32_t>(next() % 1024));
      s.loss_mask.push_back(t % shape.tool_every == shape.tool_at ? 0 : 1);
    }
    for (const double lp : response_logprobs(model, s, shape.temperature)) {
      const double offset = static_cast<double>(next() % 1001) / 1000.0 * (2 * shape.offset) - shape.offset;
      s.old_logprobs.push_back(static_cast<float>(lp + offset));
    }
    s.advantage = shape.advantage[i];
    samples.push_back(std::move(s));
  }
  return samples;
}

}  // namespace torl::testing
