#include "model/reference_check.hpp"

#include <algorithm>

#include "model/generation_engine.hpp"
#include "model/logprobs.hpp"
#include "model/qwen2_causal_lm.hpp"

namespace torl::model {
namespace {

Expected<torch::Tensor> tensor(const TensorMap& reference, const std::string& name, int64_t dims) {
  const auto it = reference.find(name);
  if (it == reference.end()) return not_found("reference: no tensor '" + name + "'");
  if (it->second.dim() != dims) {
    return invalid_argument("reference: '" + name + "' has " + std::to_string(it->second.dim()) + " dimensions, not " +
                            std::to_string(dims));
  }
  return it->second;
}

// Max |a - b| where `where` is true, in float64 on the CPU.
double max_abs_error(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& where) {
  const auto diff = (a.detach().to(torch::kCPU, torch::kFloat64) - b.to(torch::kCPU, torch::kFloat64)).abs();
  const auto selected = diff.masked_select(where.to(torch::kCPU));
  return selected.numel() == 0 ? 0.0 : selected.max().item<double>();
}

// The greedy continuation of each prompt row (its real tokens) through the engine.
Expected<std::vector<std::vector<int64_t>>> engine_greedy(const Qwen2Model& model, const torch::Tensor& prompts,
                                                          const torch::Tensor& prompt_mask, int64_t new_tokens) {
  const int64_t rows = prompts.size(0), width = prompts.size(1);
  Qwen2CausalLm lm(model, rows, width + new_tokens + 1);
  const Tokenizer tokenizer = Tokenizer::byte_level({});
  GenerationEngine engine(lm, tokenizer);
  const auto ids = prompts.to(torch::kCPU, torch::kInt64).contiguous();
  const auto mask = prompt_mask.to(torch::kCPU, torch::kInt64).contiguous();
  for (int64_t row = 0; row < rows; ++row) {
    GenerationRequest request;
    request.id = row;
    for (int64_t t = 0; t < width; ++t) {
      if (mask[row][t].item<int64_t>() != 0) request.prompt.push_back(ids[row][t].item<int64_t>());
    }
    request.max_new_tokens = new_tokens;
    request.sampling.temperature = 0;
    TORL_RETURN_IF_ERROR(engine.admit(std::move(request)));
  }
  std::vector<std::vector<int64_t>> out(static_cast<size_t>(rows));
  while (engine.running() > 0) {
    for (const auto& update : engine.step()) {
      auto& tokens = out[static_cast<size_t>(update.id)];
      tokens.insert(tokens.end(), update.tokens.begin(), update.tokens.end());
    }
  }
  return out;
}

}  // namespace

Expected<std::vector<ReferenceCheck>> check_against_reference(const Qwen2Model& model, const TensorMap& reference) {
  auto ids = tensor(reference, "input_ids", 2);
  auto mask = tensor(reference, "attention_mask", 2);
  auto positions = tensor(reference, "position_ids", 2);
  auto ref_logits = tensor(reference, "logits", 3);
  auto ref_logprobs = tensor(reference, "token_logprobs", 2);
  for (const auto* t : {&ids, &mask, &positions, &ref_logits, &ref_logprobs}) {
    if (!t->ok()) return t->status();
  }
  const int64_t B = ids->size(0), T = ids->size(1);
  if (mask->sizes() != ids->sizes() || positions->sizes() != ids->sizes() || ref_logits->size(0) != B ||
      ref_logits->size(1) != T || ref_logits->size(2) != model.config().vocab_size ||
      ref_logprobs->sizes() != torch::IntArrayRef({B, T - 1})) {
    return invalid_argument("reference: shapes disagree: input_ids [B, T], attention_mask and position_ids the same, "
                            "logits [B, T, vocabulary " + std::to_string(model.config().vocab_size) +
                            "], token_logprobs [B, T-1]");
  }
  const bool full_precision = model.dtype() == torch::kFloat32 || model.dtype() == torch::kFloat64;
  const double scale = std::max(1.0, ref_logits->abs().max().item<double>());
  const double tolerance = (full_precision ? 4e-5 : 2e-2) * scale;

  std::vector<ReferenceCheck> checks;
  try {
    torch::NoGradGuard no_grad;
    const auto dev = model.device();
    const auto logits = model.forward(ids->to(dev), positions->to(dev), mask->to(dev));
    const auto real = (*mask != 0).unsqueeze(-1).expand_as(*ref_logits);
    checks.push_back({"logits", max_abs_error(logits, *ref_logits, real), tolerance,
                      std::to_string(B) + " rows of " + std::to_string(T) + " tokens, real tokens"});
    const auto out = token_logprobs(model, ids->to(dev), mask->to(dev), positions->to(dev));
    checks.push_back({"token log-probs", max_abs_error(out.logprobs, *ref_logprobs, out.valid), tolerance,
                      "positions whose token and next token are real"});
  } catch (const std::exception& e) {
    return Status(StatusCode::kInternal, std::string("reference check: forward: ") + e.what());
  }

  if (!reference.count("greedy_ids") || !full_precision) return checks;
  auto prompts = tensor(reference, "prompt_ids", 2);
  auto prompt_mask = tensor(reference, "prompt_mask", 2);
  auto greedy = tensor(reference, "greedy_ids", 2);
  for (const auto* t : {&prompts, &prompt_mask, &greedy}) {
    if (!t->ok()) return t->status();
  }
  const int64_t P = prompts->size(1), N = greedy->size(1) - P;
  if (prompt_mask->sizes() != prompts->sizes() || greedy->size(0) != prompts->size(0) || N < 1) {
    return invalid_argument("reference: prompt_ids and prompt_mask must be [R, P] and greedy_ids [R, P + N], N >= 1");
  }
  auto generated = engine_greedy(model, *prompts, *prompt_mask, N);
  if (!generated) return generated.status().with_context("reference check: greedy generation");
  const auto want = greedy->to(torch::kCPU, torch::kInt64).contiguous();
  int64_t differ = 0;
  for (int64_t row = 0; row < prompts->size(0); ++row) {
    const auto& got = (*generated)[static_cast<size_t>(row)];
    for (int64_t t = 0; t < N; ++t) {
      differ += t >= static_cast<int64_t>(got.size()) || got[static_cast<size_t>(t)] != want[row][P + t].item<int64_t>();
    }
  }
  checks.push_back({"greedy ids", static_cast<double>(differ), 0,
                    std::to_string(prompts->size(0)) + " prompts x " + std::to_string(N) + " new tokens, through the engine"});
  return checks;
}

}  // namespace torl::model
