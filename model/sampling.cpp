#include "model/sampling.hpp"

#include "common/check.hpp"

namespace torl::model {

double SequenceRng::next_uniform() {
  uint64_t z = seed_ + 0x9E3779B97F4A7C15ULL * ++draws_;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53;  // 53 random bits
}

Sampled sample_next(const torch::Tensor& logits, const std::vector<SamplingParams>& params,
                    const std::vector<SequenceRng*>& rngs) {
  const int64_t batch = logits.size(0);
  TORL_CHECK(logits.dim() == 2 && static_cast<size_t>(batch) == params.size() && params.size() == rngs.size(),
             "sample_next: logits must be [B, V] with one parameter set and one generator per row");
  torch::NoGradGuard no_grad;
  const int64_t vocab = logits.size(1);

  // ---- per-row parameters, one host-to-device copy: [B, 5] = T, top_p, top_k, u, greedy ----
  bool any_sampled = false, any_truncated = false;
  std::vector<double> rows(static_cast<size_t>(batch * 5));
  for (int64_t b = 0; b < batch; ++b) {
    const SamplingParams& p = params[static_cast<size_t>(b)];
    const bool greedy = p.temperature <= 0;
    const bool truncated = !greedy && (p.top_p < 1.0 || (p.top_k > 0 && p.top_k < vocab));
    any_sampled = any_sampled || !greedy;
    any_truncated = any_truncated || truncated;
    double* row = &rows[static_cast<size_t>(b * 5)];
    row[0] = greedy ? 1.0 : p.temperature;
    row[1] = p.top_p < 1.0 ? p.top_p : 2.0;  // above 1: rounding in the cumsum cannot cut the tail
    row[2] = static_cast<double>(p.top_k > 0 ? std::min(p.top_k, vocab) : vocab);
    row[3] = greedy ? 0.0 : rngs[static_cast<size_t>(b)]->next_uniform();
    row[4] = greedy ? 1.0 : 0.0;
  }
  const torch::Tensor table =
      torch::from_blob(rows.data(), {batch, 5}, torch::kFloat64).to(logits.device());  // [B, 5]
  const torch::Tensor temperature = table.select(1, 0).to(torch::kFloat32).unsqueeze(1);
  const torch::Tensor logprobs = torch::log_softmax(logits.to(torch::kFloat32) / temperature, -1);  // [B, V]

  // ---- greedy rows take the argmax; the others invert their CDF at u ----
  torch::Tensor tokens = logprobs.argmax(-1);  // [B]
  if (any_sampled) {
    // The CDF is summed in float64 so that a token of zero probability cannot be picked through a
    // rounding step, and the target is u times the row's (truncated) total.
    torch::Tensor probs = logprobs.exp().to(torch::kFloat64);  // [B, V]
    torch::Tensor order;
    torch::Tensor kept;  // [B, 1]: tokens left after truncation (a prefix of the sorted order)
    if (any_truncated) {
      std::tie(probs, order) = probs.sort(-1, /*descending=*/true);
      const torch::Tensor before = probs.cumsum(-1) - probs;  // mass of the more likely tokens
      const torch::Tensor rank = torch::arange(vocab, table.options()).unsqueeze(0);
      const torch::Tensor keep = before.lt(table.select(1, 1).unsqueeze(1)).logical_and(rank.lt(table.select(1, 2).unsqueeze(1)));
      probs = probs * keep;
      kept = keep.sum(-1, /*keepdim=*/true);
    }
    const torch::Tensor cdf = probs.cumsum(-1);                                // [B, V]
    const torch::Tensor target = table.select(1, 3).unsqueeze(1) * cdf.narrow(1, vocab - 1, 1);
    torch::Tensor picked = torch::searchsorted(cdf, target, /*out_int32=*/false, /*right=*/true);  // [B, 1]
    if (any_truncated) {
      picked = order.gather(1, torch::minimum(picked, kept - 1));
    } else {
      picked = picked.clamp_max(vocab - 1);
    }
    tokens = torch::where(table.select(1, 4).gt(0), tokens, picked.squeeze(1));
  }
  const torch::Tensor token_logprobs = logprobs.gather(1, tokens.unsqueeze(1)).squeeze(1);

  // ---- one device-to-host copy: [2, B] ----
  const torch::Tensor host =
      torch::stack({tokens.to(torch::kFloat64), token_logprobs.to(torch::kFloat64)}).to(torch::kCPU).contiguous();
  const double* values = host.data_ptr<double>();
  Sampled out;
  out.tokens.resize(static_cast<size_t>(batch));
  out.logprobs.assign(values + batch, values + 2 * batch);
  for (int64_t b = 0; b < batch; ++b) out.tokens[static_cast<size_t>(b)] = static_cast<int64_t>(values[b]);
  return out;
}

}  // namespace torl::model
