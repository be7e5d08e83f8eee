// A model's outputs against reference outputs of another implementation: HF transformers, written by
// tests/reference/hf_reference.py in the layout of ../shared/fixtures/tiny-qwen2/reference.safetensors.
// `torl model check` prints the result; the tests use it to prove that a checkpoint torl writes computes
// in transformers what it computes in torl. Runs on the model's device; one thread at a time, like the
// model.
#pragma once

#include <string>
#include <vector>

#include "common/status.hpp"
#include "model/qwen2.hpp"
#include "model/safetensors.hpp"

namespace torl::model {

struct ReferenceCheck {
  std::string name;        // "logits", "token log-probs", "greedy ids"
  double error = 0;        // max |torl - reference| at real tokens; for greedy ids, the ids that differ
  double tolerance = 0;    // passes when error <= tolerance
  std::string detail;      // how it was measured, for the report
  bool passed() const { return error <= tolerance; }
};

// Compares, with `reference` holding input_ids, attention_mask and position_ids [B, T] (int64),
// logits [B, T, V] (float32), token_logprobs [B, T-1] (float64), and optionally prompt_ids and
// prompt_mask [R, P] with greedy_ids [R, P + N] (HF generate, greedy, N new tokens):
//   logits        at real tokens; tolerance 4e-5 x max(1, max |reference logit|) for a float32 model,
//                 2e-2 x the same for bfloat16 and float16;
//   token log-probs  at positions whose token and next token are real; the same tolerances;
//   greedy ids    the N tokens of each prompt through the generation engine (what torl generate runs),
//                 all equal for float32; not checked in reduced precision, where a near-tie between two
//                 tokens legitimately goes either way.
// Errors: a tensor missing or of the wrong shape (named), or a LibTorch failure.
Expected<std::vector<ReferenceCheck>> check_against_reference(const Qwen2Model& model, const TensorMap& reference);

}  // namespace torl::model
