// ModelledLm: a CausalLm with no model behind it, for benchmarks and tests of the pipeline on a modelled
// accelerator. Each extend() is one forward that takes
//     fixed + per_token x (new tokens) + per_cached x (cache positions the rows attend)
// of wall time and no CPU (the calling thread sleeps, as a host waits on a GPU), and returns logits of
// zeros [rows, V]; wrap it in a ScriptedLm for the text. So a step split into several forwards pays the
// fixed cost each time, as it would on a GPU, and the sandbox's workers have the CPUs to themselves.
// Counts forwards, tokens and the modelled time. Owned by the engine's thread.
#pragma once

#include <string>
#include <vector>

#include "model/generation_engine.hpp"

namespace torl::model {

struct ForwardCost {
  double fixed_ms = 0;       // a forward's launch and weight reading
  double per_token_ms = 0;   // each new token (prefill and decode alike)
  double per_cached_ms = 0;  // each cache position a row attends to

  // A decode step of Qwen2.5-1.5B (bf16) on one H200 through torl's engine with CUDA graphs: 4.2 ms at
  // batch 1, 5.3 ms at batch 64 (prompt 256, 256 new tokens), and a prefill of 64 x 256 tokens in
  // 216 ms (tools/device/RESULTS.md, 2026-12-04).
  static ForwardCost h200_qwen_1_5b() { return {4.2, 0.013, 0.0}; }
  // "FIXED,PER_TOKEN,PER_CACHED" in milliseconds, e.g. "4.2,0.013,0".
  static Expected<ForwardCost> parse(const std::string& text);
  std::string to_string() const;
  double ms(int64_t new_tokens, int64_t cached) const {
    return fixed_ms + per_token_ms * static_cast<double>(new_tokens) + per_cached_ms * static_cast<double>(cached);
  }
};

class ModelledLm : public CausalLm {
 public:
  ModelledLm(int64_t max_slots, int64_t max_length, int64_t vocabulary, ForwardCost cost);

  int64_t max_slots() const override { return static_cast<int64_t>(lengths_.size()); }
  int64_t max_length() const override { return max_length_; }
  torch::Tensor extend(const std::vector<int64_t>& slots, const std::vector<std::vector<int64_t>>& tokens) override;
  void clear(int64_t slot) override { lengths_[static_cast<size_t>(slot)] = 0; }
  void truncate(int64_t slot, int64_t length) override;

  int64_t forwards() const { return forwards_; }
  int64_t rows() const { return rows_; }            // rows over all forwards
  int64_t new_tokens() const { return new_tokens_; }  // tokens fed over all forwards
  double modelled_s() const { return modelled_ms_ / 1000.0; }
  // How much longer the sleeps lasted than asked, in all: the thread woke late (a busy machine's
  // scheduling), which a GPU's host thread would suffer too.
  double late_s() const { return late_ms_ / 1000.0; }

 private:
  int64_t max_length_, vocabulary_;
  ForwardCost cost_;
  std::vector<int64_t> lengths_;
  int64_t forwards_ = 0, rows_ = 0, new_tokens_ = 0;
  double modelled_ms_ = 0, late_ms_ = 0;
};

}  // namespace torl::model
