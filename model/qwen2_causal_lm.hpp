// Qwen2CausalLm: a Qwen2Model with a preallocated KV cache of `max_slots` sequence slots, as the
// generation engine needs it (CausalLm). Per layer, k and v are one tensor [slots, K, max_length,
// D] allocated up front (an out-of-memory shows at start, not mid-run); a slot's entries are
// left-aligned. extend() runs one batched forward for the rows that add several tokens (a new prompt,
// or a tool result appended on resume) and one for the rows that add one (decoding), so that a prompt
// arriving mid-run does not pad every decoding row to its length; decoding rows whose caches differ
// much in length (continuous batching staggers them) are split into up to 4 forwards when that saves
// a quarter of the padded cache positions. In each forward the slots'
// caches are gathered with one index_select per layer (right-padded and masked), their new tokens
// left-padded; then each slot's new entries are written back in place. Owned by the engine's thread.
#pragma once

#include <memory>
#include <vector>

#include "model/generation_engine.hpp"
#include "model/qwen2.hpp"

namespace torl::model {

class Qwen2CausalLm : public CausalLm {
 public:
  Qwen2CausalLm(const Qwen2Model& model, int64_t max_slots, int64_t max_length);

  // The same, checked first: max_length within the model's positions (max_position_embeddings), the
  // cache within the memory the machine has (CPU: MemAvailable), and a failed allocation an error,
  // not an abort. Errors say what was asked for; callers add which settings set it.
  static Expected<std::unique_ptr<Qwen2CausalLm>> create(const Qwen2Model& model, int64_t max_slots,
                                                         int64_t max_length);

  int64_t max_slots() const override { return static_cast<int64_t>(lengths_.size()); }
  int64_t max_length() const override { return max_length_; }
  torch::Tensor extend(const std::vector<int64_t>& slots, const std::vector<std::vector<int64_t>>& tokens) override;
  void clear(int64_t slot) override { lengths_[static_cast<size_t>(slot)] = 0; }
  void truncate(int64_t slot, int64_t length) override;

 private:
  // One forward over these slots (new tokens padded to the longest): logits [slots, V].
  torch::Tensor extend_together(const std::vector<int64_t>& slots, const std::vector<std::vector<int64_t>>& tokens);

  const Qwen2Model& model_;
  int64_t max_length_;
  std::vector<LayerKv> cache_;    // per layer: k, v [slots, K, max_length, D]
  std::vector<int64_t> lengths_;  // tokens held by each slot
};

}  // namespace torl::model
