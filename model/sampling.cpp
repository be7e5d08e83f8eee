#include "model/sampling.hpp"

#include "common/check.hpp"

namespace torl::model {

SequenceRng::SequenceRng(uint64_t seed) : generator_(at::make_generator<at::CPUGeneratorImpl>(seed)) {}

Sampled sample_next(const torch::Tensor& logits, const SamplingParams& params, std::vector<SequenceRng*>& rngs) {
  TORL_CHECK(logits.dim() == 2 && static_cast<size_t>(logits.size(0)) == rngs.size(),
             "sample_next: logits must be [B, V] with one generator per row");
  torch::NoGradGuard no_grad;
  const int64_t batch = logits.size(0);
  const bool greedy = params.temperature <= 0;
  // Sampling happens on the CPU in float32 with each row's own generator, so that a row's draw does
  // not depend on the other rows or on the device.
  torch::Tensor scaled = logits.to(torch::kCPU, torch::kFloat32);
  if (!greedy) scaled = scaled / params.temperature;
  const torch::Tensor logprobs = torch::log_softmax(scaled, -1);  // [B, V]

  Sampled out;
  out.tokens.resize(static_cast<size_t>(batch));
  out.logprobs.resize(static_cast<size_t>(batch));
  for (int64_t b = 0; b < batch; ++b) {
    const torch::Tensor row = logprobs[b];
    int64_t token;
    if (greedy) {
      token = row.argmax().item<int64_t>();
    } else {
      torch::Tensor probs = row.exp();
      if (params.top_k > 0 && params.top_k < probs.size(0)) {
        const torch::Tensor kth = std::get<0>(probs.topk(params.top_k)).index({params.top_k - 1});
        probs = torch::where(probs < kth, torch::zeros_like(probs), probs);
      }
      if (params.top_p < 1.0) {
        auto [sorted, order] = probs.sort(/*dim=*/0, /*descending=*/true);
        const torch::Tensor before = sorted.cumsum(0) - sorted;  // mass of the more likely tokens
        sorted = torch::where(before >= params.top_p, torch::zeros_like(sorted), sorted);
        probs = torch::zeros_like(probs).scatter(0, order, sorted);
      }
      token = torch::multinomial(probs, 1, /*replacement=*/false, rngs[static_cast<size_t>(b)]->generator())
                  .item<int64_t>();
    }
    out.tokens[static_cast<size_t>(b)] = token;
    out.logprobs[static_cast<size_t>(b)] = row[token].item<double>();
  }
  return out;
}

}  // namespace torl::model
