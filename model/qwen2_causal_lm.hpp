// Qwen2CausalLm: a Qwen2Model with a preallocated KV cache of `max_slots` sequence slots, as the
// generation engine needs it (CausalLm). Per layer, k and v are one tensor [slots, K, max_length,
// D] allocated up front (an out-of-memory shows at start, not mid-run); a slot's entries are
// left-aligned. extend() is one forward per engine step, whatever the rows add: their new tokens are
// laid end to end (no padding), so each matrix product reads the weights once for the decoding rows,
// the new prompts and the resumed sequences' tool outputs alike (chunked prefill). The new keys and
// values are written into the slots in place; the decoding rows attend over the cache as a view, as
// one batch with per-slot lengths and query heads grouped by key/value head (no gather of the past,
// no copy per head), each chunk over its own slot; logits come out only at each row's last token.
//
// On CUDA a step where every row decodes is padded (pad_decode): the batch to the next power of two
// of the slots it spans (idle slots feed a dummy token into a scratch cache position), the keys to a
// multiple of 256; so the steps have few shapes, and each shape's forward is captured once as a CUDA
// graph (cuda_graphs) and replayed: one launch per step instead of ~50 per layer. Owned by the
// engine's thread. release_cache() frees the cache while no slot holds tokens (and the graphs, which
// point into it); the next extend() allocates it again.
#pragma once

#include <memory>
#include <vector>

#include "model/generation_engine.hpp"
#include "model/qwen2.hpp"

namespace torl::model {

class Qwen2CausalLm : public CausalLm {
 public:
  Qwen2CausalLm(const Qwen2Model& model, int64_t max_slots, int64_t max_length);
  ~Qwen2CausalLm() override;

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
  bool release_cache() override;
  int64_t releases() const { return releases_; }  // times the cache was freed

  // Both on by default on CUDA, off on the CPU (where padding costs compute and graphs do not exist).
  // Padding alone (no graphs) gives the same logits as without; the tests check that on the CPU.
  void set_pad_decode(bool on) { pad_decode_ = on; }
  void set_cuda_graphs(bool on) { cuda_graphs_ = on; }
  int64_t graphs_captured() const { return graphs_captured_; }
  int64_t forwards() const { return forwards_; }  // model forwards run (graph replays included)
  int64_t rows() const { return rows_; }          // rows over all forwards

 private:
  struct StepPlan;
  struct DecodeGraphs;
  StepPlan plan_step(const std::vector<int64_t>& slots, const std::vector<std::vector<int64_t>>& tokens) const;
  // The final hidden states [n, C] of the plan's tokens; `meta` is plan.host on the device.
  torch::Tensor hidden_states(const StepPlan& plan, const torch::Tensor& meta);
  // A padded decode step, through its CUDA graph where there are graphs, else hidden_states: the final
  // hidden states of the caller's first `rows` rows, whose padded rows the plan's "last" part names.
  torch::Tensor run_padded(const StepPlan& plan, int64_t rows);
  void allocate_cache();

  const Qwen2Model& model_;
  int64_t max_length_;
  std::vector<LayerKv> cache_;    // per layer: k, v [slots, K, max_length + 1, D] (the last: scratch)
  std::vector<int64_t> lengths_;  // tokens held by each slot
  bool pad_decode_ = false, cuda_graphs_ = false;
  std::unique_ptr<DecodeGraphs> graphs_;
  int64_t graphs_captured_ = 0, forwards_ = 0, rows_ = 0, releases_ = 0;
};

}  // namespace torl::model
