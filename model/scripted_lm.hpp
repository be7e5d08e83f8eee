// ScriptedLm: a CausalLm that answers with scripted tokens while an inner model does the real work.
// Each slot's prompt picks its script; every extend() runs the inner model (same shapes, same cache
// traffic, same time) and then replaces each slot's logits by a one-hot on the script's next token
// (EOS after the end). Tests use it to make a real model write exact text (code blocks, tool calls);
// the pipeline bench uses it to make every trajectory the same length at any C.
// Owned by the engine's thread, like the model it wraps.
#pragma once

#include <map>
#include <vector>

#include "model/generation_engine.hpp"

namespace torl::model {

class ScriptedLm : public CausalLm {
 public:
  // scripts: prompt tokens -> the tokens to "sample" after it, in order. A prompt without a script
  // gets `fallback`. `eos` follows every script.
  ScriptedLm(CausalLm& inner, std::map<std::vector<int64_t>, std::vector<int64_t>> scripts,
             std::vector<int64_t> fallback, int64_t eos);

  int64_t max_slots() const override { return inner_.max_slots(); }
  int64_t max_length() const override { return inner_.max_length(); }
  torch::Tensor extend(const std::vector<int64_t>& slots, const std::vector<std::vector<int64_t>>& tokens) override;
  void clear(int64_t slot) override;
  void truncate(int64_t slot, int64_t length) override { inner_.truncate(slot, length); }

 private:
  struct Cursor {
    const std::vector<int64_t>* script = nullptr;  // chosen by the prompt at the slot's first extend
    size_t next = 0;
  };

  CausalLm& inner_;
  std::map<std::vector<int64_t>, std::vector<int64_t>> scripts_;
  std::vector<int64_t> fallback_;
  int64_t eos_;
  std::vector<Cursor> cursors_;  // by slot
};

}  // namespace torl::model
