// Choosing the next token of each sequence from its logits: greedy, or sampling with temperature,
// top-k and top-p from a generator seeded per sequence, so that a trajectory is reproducible from
// its seed whatever else is in the batch. Used by the generation engine on its own thread.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/torch.h>

namespace torl::model {

struct SamplingParams {
  double temperature = 1.0;  // 0 = greedy
  double top_p = 1.0;        // keep the smallest set of tokens whose probability reaches top_p
  int64_t top_k = 0;         // keep the k most likely tokens; 0 = all
};

struct Sampled {
  std::vector<int64_t> tokens;    // [B]
  std::vector<double> logprobs;   // [B]: log p(token) under softmax(logits / temperature), before
                                  // top-k/top-p truncation (the policy's probability; greedy: T = 1)
};

// One sequence's random source: a CPU generator seeded once, advanced by each draw.
class SequenceRng {
 public:
  explicit SequenceRng(uint64_t seed);
  at::Generator& generator() { return generator_; }

 private:
  at::Generator generator_;
};

// logits: [B, V] (any float dtype, any device); rngs: B generators (one per row).
Sampled sample_next(const torch::Tensor& logits, const SamplingParams& params, std::vector<SequenceRng*>& rngs);

}  // namespace torl::model
