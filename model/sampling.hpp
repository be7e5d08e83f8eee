// Choosing the next token of each sequence from its logits: greedy, or sampling with temperature,
// top-k and top-p, each row with its own parameters and its own seeded random stream, so that a
// trajectory is reproducible from its seed whatever else is in the batch.
//
// All rows are handled by one batched pass on the logits' device (inverse-CDF sampling: the host
// draws one uniform number per row, the device finds where it falls in the row's cumulative
// distribution); one small copy brings the tokens and their log-probs back. Used by the generation
// engine on its own thread.
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

// One sequence's random stream: uniform numbers in [0, 1) from a counter hashed with the seed
// (SplitMix64), the same on every machine and device.
class SequenceRng {
 public:
  explicit SequenceRng(uint64_t seed) : seed_(seed) {}
  double next_uniform();

 private:
  uint64_t seed_;
  uint64_t draws_ = 0;
};

// logits: [B, V] (any float dtype, any device); params[b] and rngs[b] belong to row b. A greedy row
// (temperature 0) draws nothing from its stream.
Sampled sample_next(const torch::Tensor& logits, const std::vector<SamplingParams>& params,
                    const std::vector<SequenceRng*>& rngs);

}  // namespace torl::model
