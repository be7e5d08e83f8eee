// Qwen2CausalLm: a Qwen2Model with a KV cache per sequence slot, as the generation engine needs it
// (CausalLm). Each extend() runs one batched forward over the slots it is given: their caches and
// new tokens are left-padded to common lengths and masked, then each slot keeps its real entries.
// Caches grow by concatenation (a preallocated cache is the planned GPU optimisation). Owned by the
// engine's thread.
#pragma once

#include <vector>

#include "model/generation_engine.hpp"
#include "model/qwen2.hpp"

namespace torl::model {

class Qwen2CausalLm : public CausalLm {
 public:
  Qwen2CausalLm(const Qwen2Model& model, int64_t max_slots, int64_t max_length);

  int64_t max_slots() const override { return static_cast<int64_t>(caches_.size()); }
  int64_t max_length() const override { return max_length_; }
  torch::Tensor extend(const std::vector<int64_t>& slots, const std::vector<std::vector<int64_t>>& tokens) override;
  void clear(int64_t slot) override;

 private:
  struct SlotCache {
    std::vector<LayerKv> layers;  // k, v: [1, K, length, D]; empty before the first extend
    int64_t length = 0;
  };

  const Qwen2Model& model_;
  int64_t max_length_;
  std::vector<SlotCache> caches_;
};

}  // namespace torl::model
