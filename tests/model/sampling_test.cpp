#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <map>

#include "model/sampling.hpp"

namespace torl::model {
namespace {

std::vector<SequenceRng*> pointers(std::vector<SequenceRng>& rngs) {
  std::vector<SequenceRng*> out;
  for (auto& rng : rngs) out.push_back(&rng);
  return out;
}

TEST_SUITE("model") {
  TEST_CASE("greedy picks the largest logit and reports its log-probability") {
    const torch::Tensor logits = torch::tensor({{0.0f, 2.0f, 1.0f}, {3.0f, 0.0f, 0.0f}});
    std::vector<SequenceRng> rngs{SequenceRng(1), SequenceRng(2)};
    auto ptrs = pointers(rngs);
    const Sampled s = sample_next(logits, {{.temperature = 0}, {.temperature = 0}}, ptrs);
    CHECK(s.tokens == std::vector<int64_t>{1, 0});
    const double expected = 2.0 - std::log(std::exp(0.0) + std::exp(2.0) + std::exp(1.0));
    CHECK(s.logprobs[0] == doctest::Approx(expected).epsilon(1e-6));
  }

  TEST_CASE("the same seed gives the same draws whatever the rest of the batch is") {
    const torch::Tensor logits = torch::zeros({1, 50});
    std::vector<SequenceRng> a{SequenceRng(7)};
    std::vector<SequenceRng> b{SequenceRng(99), SequenceRng(7)};
    auto pa = pointers(a);
    auto pb = pointers(b);
    for (int i = 0; i < 20; ++i) {
      const int64_t alone = sample_next(logits, {{}}, pa).tokens[0];
      const int64_t in_batch = sample_next(torch::zeros({2, 50}), {{}, {}}, pb).tokens[1];
      CHECK(alone == in_batch);
    }
  }

  TEST_CASE("rows with different parameters in one batch sample as they would alone") {
    const torch::Tensor row = torch::tensor({{0.5f, 0.3f, 0.15f, 0.05f}}).log();
    const std::vector<SamplingParams> params{{.temperature = 0}, {.top_p = 0.75}, {.temperature = 1.5, .top_k = 3}, {}};
    std::vector<SequenceRng> together{SequenceRng(1), SequenceRng(2), SequenceRng(3), SequenceRng(4)};
    std::vector<SequenceRng> alone = together;
    auto pt = pointers(together);
    for (int i = 0; i < 50; ++i) {
      const Sampled batch = sample_next(row.expand({4, 4}).contiguous(), params, pt);
      for (size_t b = 0; b < 4; ++b) {
        const Sampled single = sample_next(row, {params[b]}, {&alone[b]});
        CHECK(batch.tokens[b] == single.tokens[0]);
        CHECK(batch.logprobs[b] == doctest::Approx(single.logprobs[0]).epsilon(1e-12));
      }
    }
  }

  TEST_CASE("a token of zero probability is never sampled") {
    const float inf = std::numeric_limits<float>::infinity();
    const torch::Tensor logits = torch::tensor({{-inf, 0.0f, -inf, 0.0f, -inf}});
    std::vector<SequenceRng> rngs{SequenceRng(11)};
    auto ptrs = pointers(rngs);
    std::map<int64_t, int> seen;
    for (int i = 0; i < 2000; ++i) {
      ++seen[sample_next(logits, {{}}, ptrs).tokens[0]];
      ++seen[sample_next(logits, {{.top_p = 0.9}}, ptrs).tokens[0]];
    }
    CHECK(seen.size() == 2);
    CHECK(seen.count(1) == 1);
    CHECK(seen.count(3) == 1);
  }

  TEST_CASE("top-k and top-p keep only the likely tokens, and sampling follows the probabilities") {
    // probabilities 0.5, 0.3, 0.15, 0.05
    const torch::Tensor logits = torch::tensor({{0.5f, 0.3f, 0.15f, 0.05f}}).log();
    std::vector<SequenceRng> rngs{SequenceRng(3)};
    auto ptrs = pointers(rngs);
    std::map<int64_t, int> top_k, top_p, full;
    for (int i = 0; i < 4000; ++i) {
      ++top_k[sample_next(logits, {{.top_k = 2}}, ptrs).tokens[0]];
      ++top_p[sample_next(logits, {{.top_p = 0.75}}, ptrs).tokens[0]];  // 0.5 + 0.3 reach 0.75
      ++full[sample_next(logits, {{}}, ptrs).tokens[0]];
    }
    CHECK(top_k.size() == 2);
    CHECK(top_k.count(0) == 1);
    CHECK(top_k.count(1) == 1);
    CHECK(top_p.size() == 2);
    CHECK(full.size() == 4);
    CHECK(full[0] / 4000.0 == doctest::Approx(0.5).epsilon(0.08));
    CHECK(full[3] / 4000.0 == doctest::Approx(0.05).epsilon(0.4));
  }

  TEST_CASE("the reported log-probability is the tempered policy's, before truncation") {
    const torch::Tensor logits = torch::tensor({{1.0f, 2.0f}});
    std::vector<SequenceRng> rngs{SequenceRng(5)};
    auto ptrs = pointers(rngs);
    const Sampled s = sample_next(logits, {{.temperature = 0.5, .top_k = 1}}, ptrs);
    CHECK(s.tokens[0] == 1);
    const double expected = 4.0 - std::log(std::exp(2.0) + std::exp(4.0));
    CHECK(s.logprobs[0] == doctest::Approx(expected).epsilon(1e-6));
  }
}

}  // namespace
}  // namespace torl::model
