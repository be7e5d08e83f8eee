// The generation engine's speed on one model: prefill and decode tokens/s for a batch of random
// prompts, every sequence running its whole budget (greedy, no stop strings, no EOS). What
// `torl generate bench` prints. One untimed warm-up run first (kernel selection, allocator, thread
// pool), then `repeats` timed runs on a fresh engine each; the caller reports their medians.
#pragma once

#include <vector>

#include "common/status.hpp"
#include "model/qwen2.hpp"

namespace torl::model {

struct GenerationBenchShape {
  long batch = 1;        // sequences decoded together
  long prompt_len = 128;  // tokens of each random prompt
  long new_tokens = 64;   // tokens generated per sequence (>= 2)
  int repeats = 5;        // timed runs (>= 1)
  bool cuda_graphs = true;  // on CUDA: decode steps replay CUDA graphs (Qwen2CausalLm)
};

struct GenerationBenchRun {
  double prefill_s = 0;  // the first engine step: every prompt, and each sequence's first token
  double decode_s = 0;   // the remaining steps
  long decode_steps = 0;
  long decode_forwards = 0;   // model forwards in the decode steps (one per step)
  long graphs_captured = 0;   // CUDA graphs captured so far (by the warm-up run, when graphs are on)
};

// Runs the benchmark; errors when the engine refuses the shape (e.g. more sequences than slots).
Expected<std::vector<GenerationBenchRun>> bench_generation(const Qwen2Model& model, const GenerationBenchShape& shape);

}  // namespace torl::model
