// The policy trainer on the tiny fixture model (../shared/fixtures/tiny-qwen2) in float64: its
// gradient against central finite differences, micro-batch accumulation against one batch, the AdamW
// state through a safetensors file and back, and the errors.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "model/generation_engine.hpp"
#include "model/grpo.hpp"
#include "model/logprobs.hpp"
#include "model/policy_trainer.hpp"
#include "model/qwen2_causal_lm.hpp"
#include "model/safetensors.hpp"
#include "tests/model/policy_samples.hpp"
#include "tests/temp_dir.hpp"

// After the LibTorch headers: glog (through c10) defines its own CHECK (see qwen2_test.cpp).
#include <doctest/doctest.h>

namespace torl::model {
namespace {

using testing::load_tiny;
using testing::response_logprobs;

// Five samples of different lengths, with tool output (every fourth token) inside responses,
// advantages of both signs, and old log-probs within +-0.5 of the current ones (some ratios clipped).
std::vector<PolicySample> make_samples(const Qwen2Model& model, double temperature) {
  return testing::make_policy_samples(model, {.seed = 12345,
                                              .prompt_len = {3, 5, 2, 4, 6},
                                              .response_len = {6, 4, 9, 5, 7},
                                              .advantage = {1.2f, -0.8f, 0.5f, -1.5f, 0.9f},
                                              .tool_every = 4,
                                              .tool_at = 2,
                                              .offset = 0.5,
                                              .temperature = temperature});
}

PolicyTrainerOptions trainer_options(int micro_batch) {
  PolicyTrainerOptions o;
  o.train.lr = 1e-3;
  o.train.micro_batch = micro_batch;
  o.train.warmup_steps = 3;
  o.train.grad_clip = 1.0;
  o.algorithm.clip_low = 0.2;
  o.algorithm.clip_high = 0.28;
  // the samples' own old log-probs (off the policy by an offset), so that ratios and clipping are exercised
  o.algorithm.old_logprobs = config::OldLogprobs::kSampler;
  return o;
}

PolicyTrainer make_trainer(Qwen2Model& model, const PolicyTrainerOptions& options,
                           const Qwen2Model* reference = nullptr) {
  auto trainer = PolicyTrainer::create(model, options, reference);
  REQUIRE_MESSAGE(trainer.ok(), trainer.status().to_string());
  return std::move(*trainer);
}

std::map<std::string, torch::Tensor> gradients(const Qwen2Model& model) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& [name, p] : model.named_parameters()) {
    REQUIRE_MESSAGE(p.grad().defined(), name);
    out[name] = p.grad().clone();
  }
  return out;
}

// Three rows sharing their first 6 tokens, then of different lengths (right padding): ids, attention
// mask and positions, [3, 11] each.
struct PaddedRows {
  torch::Tensor ids, mask, pos;
};
PaddedRows shared_prefix_rows() {
  const std::vector<std::vector<int64_t>> rows = {{5, 9, 2, 7, 7, 1, 40, 41, 42, 43, 44},
                                                  {5, 9, 2, 7, 7, 1, 90, 91},
                                                  {5, 9, 2, 7, 7, 1, 3, 4, 5, 6}};
  const int64_t B = 3, T = 11;
  auto ids = torch::zeros({B, T}, torch::kInt64), mask = torch::zeros({B, T}, torch::kInt64);
  for (int64_t b = 0; b < B; ++b) {
    for (size_t t = 0; t < rows[b].size(); ++t) ids[b][static_cast<int64_t>(t)] = rows[b][t], mask[b][static_cast<int64_t>(t)] = 1;
  }
  return {ids, mask, torch::arange(T, torch::kInt64).unsqueeze(0).expand({B, T})};
}

double max_weight_difference(const Qwen2Model& a, const Qwen2Model& b) {
  const auto pa = a.named_parameters(), pb = b.named_parameters();
  double diff = 0;
  for (const auto& [name, p] : pa) diff = std::max(diff, (p - pb.at(name)).abs().max().item<double>());
  return diff;
}

TEST_SUITE("model") {
  TEST_CASE("the trainer's gradient matches central finite differences (KL, entropy, temperature)") {
    auto policy = load_tiny();
    const auto reference = load_tiny();
    {  // Move the policy away from the reference so that the KL term has a gradient.
      torch::NoGradGuard no_grad;
      torch::manual_seed(0);
      for (auto& [name, p] : policy.named_parameters()) p.add_(torch::randn_like(p) * 0.01);
    }
    const double temperature = 0.7;
    auto options = trainer_options(2);
    options.temperature = temperature;
    options.algorithm.kl_coef = 0.05;
    options.algorithm.kl_estimator = config::KlEstimator::kK3;
    options.algorithm.entropy_coef = 0.01;
    const auto samples = make_samples(policy, temperature);
    auto trainer = make_trainer(policy, options, &reference);

    auto stats = trainer.compute_gradients(samples);
    REQUIRE_MESSAGE(stats.ok(), stats.status().to_string());
    CHECK(stats->kl > 0.0);
    CHECK(stats->clip_fraction > 0.0);  // some tokens are clipped: the test covers both branches
    CHECK(stats->clip_fraction < 0.5);
    const auto grads = gradients(policy);

    struct Entry {
      std::string name;
      int64_t index;  // into the flattened parameter
    };
    const int64_t token = samples[0].response[1];  // an embedding / lm_head row the batch uses
    const std::vector<Entry> entries = {
        {"model.embed_tokens.weight", samples[0].prompt[0] * 64 + 3},
        {"lm_head.weight", token * 64 + 5},
        {"model.layers.0.self_attn.q_proj.weight", 7 * 64 + 11},
        {"model.layers.0.self_attn.k_proj.bias", 4},
        {"model.layers.1.mlp.down_proj.weight", 13 * 176 + 100},
        {"model.layers.1.post_attention_layernorm.weight", 20},
        {"model.norm.weight", 5},
    };
    auto params = policy.named_parameters();
    const double h = 1e-5;
    for (const auto& e : entries) {
      INFO(e.name << "[" << e.index << "]");
      auto flat = params.at(e.name).data().view(-1);
      const double original = flat[e.index].item<double>();
      flat[e.index] = original + h;
      const auto plus = trainer.compute_gradients(samples);
      flat[e.index] = original - h;
      const auto minus = trainer.compute_gradients(samples);
      flat[e.index] = original;
      REQUIRE(plus.ok());
      REQUIRE(minus.ok());
      const double fd = (plus->loss - minus->loss) / (2 * h);
      const double analytic = grads.at(e.name).view(-1)[e.index].item<double>();
      const double rel = std::abs(fd - analytic) / std::max({std::abs(fd), std::abs(analytic), 1e-8});
      MESSAGE(e.name << "[" << e.index << "]: autograd " << analytic << ", finite difference " << fd);
      CHECK(std::abs(analytic) > 1e-7);  // a zero gradient would match trivially
      CHECK(rel < 1e-4);
    }
  }

  TEST_CASE("log-probs with a shared prefix run once equal the full forward, values and gradients") {
    auto model = load_tiny();
    model.set_requires_grad(true);
    const auto [ids, mask, pos] = shared_prefix_rows();
    const auto run = [&](int64_t shared) {
      for (auto& p : model.parameters()) p.mutable_grad() = torch::Tensor();
      const auto lp = token_logprobs(model, ids, mask, pos, {.temperature = 0.9, .shared_prefix = shared});
      (lp.logprobs.sum() + 0.1 * lp.entropy.sum()).backward();
      return std::pair{lp, gradients(model)};
    };
    const auto [full, full_grads] = run(0);
    for (const int64_t shared : {1, 4, 6}) {
      CAPTURE(shared);
      const auto [lp, grads] = run(shared);
      CHECK((lp.valid == full.valid).all().item<bool>());
      CHECK((lp.logprobs - full.logprobs).abs().max().item<double>() < 1e-12);
      CHECK((lp.entropy - full.entropy).abs().max().item<double>() < 1e-12);
      double max_diff = 0;
      for (const auto& [name, g] : full_grads) max_diff = std::max(max_diff, (grads.at(name) - g).abs().max().item<double>());
      CHECK(max_diff < 1e-12);
    }
  }

  TEST_CASE("gradient checkpointing and chunked logits give the same log-probs, entropies and gradients") {
    for (const auto dtype : {torch::kFloat64, torch::kFloat32}) {
      const bool f64 = dtype == torch::kFloat64;
      INFO((f64 ? "float64" : "float32"));
      const double tolerance = f64 ? 1e-12 : 1e-6;
      auto model = load_tiny(dtype);
      model.set_requires_grad(true);
      const auto [ids, mask, pos] = shared_prefix_rows();
      const auto run = [&](bool checkpointing, const LogprobOptions& options) {
        model.set_gradient_checkpointing(checkpointing);
        for (auto& p : model.parameters()) p.mutable_grad() = torch::Tensor();
        const auto lp = token_logprobs(model, ids, mask, pos, options);
        (lp.logprobs.sum() + 0.1 * lp.entropy.sum()).backward();
        model.set_gradient_checkpointing(false);
        return std::pair{lp, gradients(model)};
      };
      const auto [plain, plain_grads] = run(false, {.temperature = 0.9});
      for (const bool checkpointing : {false, true}) {
        for (const int64_t chunk : {0L, 1L, 4L, 64L}) {
          for (const int64_t shared : {0L, 6L}) {
            if (!checkpointing && chunk == 0 && shared == 0) continue;
            CAPTURE(checkpointing);
            CAPTURE(chunk);
            CAPTURE(shared);
            const auto [lp, grads] =
                run(checkpointing, {.temperature = 0.9, .shared_prefix = shared, .chunk_positions = chunk});
            // Relative to the values' size (|log p| and entropies here are up to ~7: float32's rounding
            // of a differently shaped matmul or sum moves them by a few 1e-7 of that).
            CHECK((lp.logprobs - plain.logprobs).abs().max().item<double>() <
                  tolerance * std::max(1.0, plain.logprobs.abs().max().item<double>()));
            CHECK((lp.entropy - plain.entropy).abs().max().item<double>() <
                  tolerance * std::max(1.0, plain.entropy.abs().max().item<double>()));
            double max_diff = 0, scale = 0;
            for (const auto& [name, g] : plain_grads) {
              max_diff = std::max(max_diff, (grads.at(name) - g).abs().max().item<double>());
              scale = std::max(scale, g.abs().max().item<double>());
            }
            CHECK(scale > 1e-3);
            // Gradients sum many more terms than a log-prob, in an order that the matmul shapes (chunks,
            // a shared prefix) and the CPU's kernels choose: in float32 the largest difference was
            // 1.0e-6 of the largest gradient on one 2-core VM (3x less on others), so float32 gets 4x that.
            CHECK(max_diff < (f64 ? tolerance : 4e-6) * std::max(1.0, scale));
          }
        }
      }
      // Only the wanted positions are computed; the others are 0.
      auto wanted = torch::zeros({ids.size(0), ids.size(1) - 1}, torch::kBool);
      wanted.narrow(1, 5, 3).fill_(true);
      const auto [some, some_grads] = run(true, {.temperature = 0.9, .wanted = wanted, .chunk_positions = 2});
      const auto both = wanted & plain.valid;
      CHECK((some.logprobs.masked_select(both) - plain.logprobs.masked_select(both)).abs().max().item<double>() < tolerance);
      CHECK(some.logprobs.masked_select(both.logical_not()).abs().sum().item<double>() == 0.0);
    }
  }

  TEST_CASE("log-probs at a temperature are those of logits / T, and the trainer scores at its own") {
    auto model = load_tiny();
    const auto samples = make_samples(model, 1.0);
    const auto& s = samples[2];
    std::vector<int64_t> ids(s.prompt.begin(), s.prompt.end());
    ids.insert(ids.end(), s.response.begin(), s.response.end());
    const auto T = static_cast<int64_t>(ids.size());
    const auto input = torch::tensor(ids, torch::kInt64).unsqueeze(0);
    const auto mask = torch::ones({1, T}, torch::kInt64);
    const auto pos = torch::arange(T, torch::kInt64).unsqueeze(0);
    torch::Tensor expected;
    {
      torch::NoGradGuard no_grad;
      const auto logits = model.forward(input, pos, mask).narrow(1, 0, T - 1);
      expected = torch::log_softmax(logits / 0.7, -1).gather(-1, input.narrow(1, 1, T - 1).unsqueeze(-1)).squeeze(-1);
    }
    const auto lp = token_logprobs(model, input, mask, pos, {.temperature = 0.7});
    CHECK((lp.logprobs.scalar_type() == torch::kFloat64));  // a float64 model keeps float64
    CHECK((lp.logprobs - expected).abs().max().item<double>() < 1e-12);
    const auto at_one = token_logprobs(model, input, mask, pos);
    CHECK((lp.logprobs - at_one.logprobs).abs().max().item<double>() > 1e-2);

    // Old log-probs sampled at 0.7: a trainer at 0.7 sees ratio 1 everywhere, one at 1.0 does not.
    auto on_policy = samples;
    for (auto& sample : on_policy) {
      sample.old_logprobs.clear();
      for (const double v : response_logprobs(model, sample, 0.7)) sample.old_logprobs.push_back(v);
    }
    auto options = trainer_options(2);
    options.temperature = 0.7;
    auto matching = make_trainer(model, options);
    const auto same = matching.compute_gradients(on_policy);
    REQUIRE(same.ok());
    CHECK(same->ratio_min == doctest::Approx(1.0).epsilon(1e-6));
    CHECK(same->ratio_max == doctest::Approx(1.0).epsilon(1e-6));
    options.temperature = 1.0;
    auto other = make_trainer(model, options);
    const auto differ = other.compute_gradients(on_policy);
    REQUIRE(differ.ok());
    CHECK(differ->ratio_max - differ->ratio_min > 0.1);
  }

  TEST_CASE("gradients with micro_batch 1 equal those of the whole batch at once") {
    auto model = load_tiny();
    const auto samples = make_samples(model, 1.0);
    for (const auto agg : {config::LossAggregation::kTokenMean, config::LossAggregation::kSequenceMean}) {
      INFO("seq_mean: " << (agg == config::LossAggregation::kSequenceMean));
      auto whole_options = trainer_options(static_cast<int>(samples.size()));
      whole_options.algorithm.loss_agg = agg;
      whole_options.algorithm.entropy_coef = 0.01;
      auto one_options = whole_options;
      one_options.train.micro_batch = 1;
      auto whole = make_trainer(model, whole_options);
      auto one = make_trainer(model, one_options);

      const auto a = whole.compute_gradients(samples);
      REQUIRE(a.ok());
      const auto ga = gradients(model);
      const auto b = one.compute_gradients(samples);
      REQUIRE(b.ok());
      const auto gb = gradients(model);
      CHECK(a->loss == doctest::Approx(b->loss).epsilon(1e-10));
      CHECK(a->entropy == doctest::Approx(b->entropy).epsilon(1e-10));
      CHECK(a->clip_fraction == b->clip_fraction);
      CHECK(a->tokens == b->tokens);
      CHECK(a->ratio_min == doctest::Approx(b->ratio_min).epsilon(1e-10));
      CHECK(a->ratio_max == doctest::Approx(b->ratio_max).epsilon(1e-10));
      double max_diff = 0, max_grad = 0;
      for (const auto& [name, g] : ga) {
        max_diff = std::max(max_diff, (g - gb.at(name)).abs().max().item<double>());
        max_grad = std::max(max_grad, g.abs().max().item<double>());
      }
      MESSAGE("max |grad(micro 1) - grad(whole)| = " << max_diff << " (max |grad| " << max_grad << ")");
      CHECK(max_grad > 1e-3);
      CHECK(max_diff < 1e-6);
    }
    // The counts: 31 response tokens, of which 7 are tool output.
    auto trainer = make_trainer(model, trainer_options(2));
    const auto stats = trainer.compute_gradients(samples);
    REQUIRE(stats.ok());
    CHECK(stats->tokens == 24);
    CHECK(stats->total_tokens == 20 + 31);
  }

  TEST_CASE("micro-batches packed by tokens give the loss and gradients of micro-batches by count, with less padding") {
    auto model = load_tiny();
    // lengths 5, 15, 6, 14: by count (2) (5, 15) and (6, 14) pad to 30 + 28; by tokens (30), sorted,
    // (15, 14) and (6, 5) pad to 30 + 12
    const auto samples = testing::make_policy_samples(model, {.seed = 99,
                                                              .prompt_len = {3, 3, 3, 3},
                                                              .response_len = {2, 12, 3, 11},
                                                              .advantage = {1.0f, -0.5f, 0.7f, -1.2f},
                                                              .tool_every = 4,
                                                              .tool_at = 2,
                                                              .offset = 0.3});
    auto by_count = trainer_options(2);
    by_count.algorithm.entropy_coef = 0.01;
    auto by_tokens = by_count;
    by_tokens.train.micro_batch = 8;
    by_tokens.train.micro_batch_tokens = 30;
    auto a_trainer = make_trainer(model, by_count);
    const auto a = a_trainer.compute_gradients(samples);
    REQUIRE(a.ok());
    const auto ga = gradients(model);
    auto b_trainer = make_trainer(model, by_tokens);
    const auto b = b_trainer.compute_gradients(samples);
    REQUIRE(b.ok());
    const auto gb = gradients(model);
    CHECK(a->micro_batches == 2);
    CHECK(a->padded_tokens == 30 + 28);
    CHECK(b->micro_batches == 2);
    CHECK(b->padded_tokens == 30 + 12);
    CHECK(a->loss == doctest::Approx(b->loss).epsilon(1e-10));
    CHECK(a->tokens == b->tokens);
    double max_diff = 0, max_grad = 0;
    for (const auto& [name, g] : ga) {
      max_diff = std::max(max_diff, (g - gb.at(name)).abs().max().item<double>());
      max_grad = std::max(max_grad, g.abs().max().item<double>());
    }
    CHECK(max_grad > 1e-3);
    CHECK(max_diff < 1e-10);
  }

  TEST_CASE("a step raises the log-prob of a positively rewarded response, with warmup and clipping") {
    auto model = load_tiny();
    auto samples = make_samples(model, 1.0);
    samples.resize(1);
    samples[0].advantage = 1.0f;
    samples[0].old_logprobs.clear();  // on-policy: ratio 1
    for (const double lp : response_logprobs(model, samples[0], 1.0)) samples[0].old_logprobs.push_back(lp);
    const auto before = response_logprobs(model, samples[0], 1.0);

    auto options = trainer_options(1);
    options.train.grad_clip = 0.5;
    auto trainer = make_trainer(model, options);
    CHECK(trainer.learning_rate() == doctest::Approx(1e-3 / 3));
    const auto stats = trainer.step(samples);
    REQUIRE_MESSAGE(stats.ok(), stats.status().to_string());
    CHECK(stats->lr == doctest::Approx(1e-3 / 3));
    CHECK(stats->grad_norm > 0.5);  // reported before clipping
    CHECK(stats->clip_fraction == 0.0);
    CHECK(stats->ratio_min == doctest::Approx(1.0).epsilon(1e-6));
    CHECK(trainer.step_count() == 1);
    CHECK(trainer.learning_rate() == doctest::Approx(2e-3 / 3));
    trainer.set_step_count(10);
    CHECK(trainer.learning_rate() == doctest::Approx(1e-3));

    const auto after = response_logprobs(model, samples[0], 1.0);
    double sum_before = 0, sum_after = 0;
    for (size_t j = 0; j < before.size(); ++j) {
      if (samples[0].loss_mask[j]) sum_before += before[j], sum_after += after[j];
    }
    MESSAGE("sum of model-token log-probs: " << sum_before << " -> " << sum_after);
    CHECK(sum_after > sum_before);
  }

  TEST_CASE("gradient clipping scales the whole gradient to grad_clip before AdamW sees it") {
    // AdamW's first moment after one step is (1 - beta1) x the gradient it was given: with clipping it
    // is the unclipped run's times grad_clip / grad_norm, tensor by tensor
    auto a = load_tiny(), b = load_tiny();
    const auto samples = make_samples(a, 1.0);
    auto unclipped_options = trainer_options(2);
    unclipped_options.train.grad_clip = 0;
    auto unclipped = make_trainer(a, unclipped_options);
    const auto free_stats = unclipped.step(samples);
    REQUIRE_MESSAGE(free_stats.ok(), free_stats.status().to_string());
    const double max_norm = free_stats->grad_norm / 4;
    auto clipped_options = trainer_options(2);
    clipped_options.train.grad_clip = max_norm;
    auto clipped = make_trainer(b, clipped_options);
    const auto stats = clipped.step(samples);
    REQUIRE_MESSAGE(stats.ok(), stats.status().to_string());
    CHECK(stats->grad_norm == doctest::Approx(free_stats->grad_norm).epsilon(1e-9));  // reported before clipping
    const TensorMap m_free = unclipped.optimizer_state(), m_clipped = clipped.optimizer_state();
    int compared = 0;
    for (const auto& [name, moment] : m_free) {
      if (name.rfind("exp_avg/", 0) != 0) continue;
      CHECK_MESSAGE(torch::allclose(m_clipped.at(name), moment * (max_norm / (free_stats->grad_norm + 1e-6)), 1e-9, 1e-15), name);
      ++compared;
    }
    CHECK(compared == static_cast<int>(a.named_parameters().size()));
  }

  TEST_CASE("a non-finite gradient skips the step: no weight or optimizer state changes, and training goes on") {
    auto model = load_tiny();
    const auto samples = make_samples(model, 1.0);
    auto trainer = make_trainer(model, trainer_options(2));
    REQUIRE(trainer.step(samples).ok());
    // one NaN in the embedding row of a token the responses use: NaN log-probs, a NaN gradient norm
    torch::Tensor embedding = model.named_parameters().at("model.embed_tokens.weight");
    const int64_t token = samples[0].response[0];
    const torch::Tensor kept = embedding[token].clone();
    {
      torch::NoGradGuard no_grad;
      embedding[token][0] = std::numeric_limits<double>::quiet_NaN();
    }
    std::map<std::string, torch::Tensor> weights_before;
    for (const auto& [name, p] : model.named_parameters()) weights_before[name] = p.clone();
    const TensorMap state_before = trainer.optimizer_state();
    const auto skipped = trainer.step(samples);
    REQUIRE_FALSE(skipped.ok());
    CHECK(skipped.status().code() == StatusCode::kAborted);
    CHECK_MESSAGE(skipped.status().message().find("nan; the step was skipped") != std::string::npos, skipped.status().message());
    CHECK(trainer.step_count() == 1);
    for (const auto& [name, p] : model.named_parameters()) CHECK_MESSAGE(torch::equal(p.nan_to_num(), weights_before.at(name).nan_to_num()), name);
    for (const auto& [name, t] : trainer.optimizer_state()) CHECK_MESSAGE(torch::equal(t, state_before.at(name)), name);

    // repaired, the next step trains from clean gradients (the NaN ones were dropped)
    {
      torch::NoGradGuard no_grad;
      embedding[token].copy_(kept);
    }
    const auto next = trainer.step(samples);
    REQUIRE_MESSAGE(next.ok(), next.status().to_string());
    CHECK(std::isfinite(next->grad_norm));
    CHECK(trainer.step_count() == 2);
    for (const auto& [name, p] : model.named_parameters()) CHECK_MESSAGE(torch::isfinite(p).all().item<bool>(), name);
  }

  TEST_CASE("optimizer state survives a safetensors round trip: both trainers then step identically") {
    auto a = load_tiny();
    const auto samples = make_samples(a, 1.0);
    auto trainer_a = make_trainer(a, trainer_options(2));
    REQUIRE(trainer_a.step(samples).ok());
    const auto state = trainer_a.optimizer_state();
    CHECK(state.size() == 3 * a.named_parameters().size());
    CHECK(state.at("step/model.norm.weight").item<int64_t>() == 1);

    testing::TempDir dir;
    const auto file = dir.path() / "optimizer.safetensors";
    REQUIRE(write_safetensors(file, state).ok());
    const auto read = read_safetensors(file);
    REQUIRE_MESSAGE(read.ok(), read.status().to_string());

    // b: a copy of a's weights after its first step, with the loaded state.
    auto b = load_tiny();
    {
      torch::NoGradGuard no_grad;
      const auto pa = a.named_parameters();
      for (auto& [name, p] : b.named_parameters()) p.copy_(pa.at(name));
    }
    auto trainer_b = make_trainer(b, trainer_options(2));
    REQUIRE_MESSAGE(trainer_b.load_optimizer_state(*read).ok(), "load");
    trainer_b.set_step_count(trainer_a.step_count());
    // c: the same weights with a fresh optimizer, to show that the state matters.
    auto c = load_tiny();
    {
      torch::NoGradGuard no_grad;
      const auto pa = a.named_parameters();
      for (auto& [name, p] : c.named_parameters()) p.copy_(pa.at(name));
    }
    auto trainer_c = make_trainer(c, trainer_options(2));
    trainer_c.set_step_count(trainer_a.step_count());

    const auto sa = trainer_a.step(samples);
    const auto sb = trainer_b.step(samples);
    REQUIRE(trainer_c.step(samples).ok());
    REQUIRE(sa.ok());
    REQUIRE(sb.ok());
    CHECK(sa->lr == sb->lr);
    CHECK(sa->loss == sb->loss);
    CHECK(max_weight_difference(a, b) == 0.0);
    const double fresh = max_weight_difference(a, c);
    MESSAGE("max weight difference with a fresh optimizer: " << fresh);
    CHECK(fresh > 1e-5);
  }

  TEST_CASE("a mismatched optimizer state is refused, names the tensor and changes nothing") {
    auto model = load_tiny();
    const auto samples = make_samples(model, 1.0);
    auto trainer = make_trainer(model, trainer_options(5));
    REQUIRE(trainer.step(samples).ok());
    const auto good = trainer.optimizer_state();

    auto missing = good;
    missing.erase("exp_avg/model.norm.weight");
    const auto s1 = trainer.load_optimizer_state(missing);
    CHECK_FALSE(s1.ok());
    CHECK(s1.message() == "optimizer state: missing exp_avg/model.norm.weight");

    auto wrong_shape = good;
    wrong_shape["exp_avg_sq/model.layers.0.mlp.up_proj.weight"] = torch::zeros({64, 176}, torch::kFloat64);
    const auto s2 = trainer.load_optimizer_state(wrong_shape);
    CHECK_FALSE(s2.ok());
    CHECK(s2.message() ==
          "optimizer state: shape mismatch for exp_avg_sq/model.layers.0.mlp.up_proj.weight [64,176] vs [176,64]");

    auto extra = good;
    extra["exp_avg/model.layers.2.mlp.up_proj.weight"] = torch::zeros({176, 64}, torch::kFloat64);
    const auto s3 = trainer.load_optimizer_state(extra);
    CHECK_FALSE(s3.ok());
    CHECK(s3.message().find("unexpected tensor exp_avg/model.layers.2.mlp.up_proj.weight") != std::string::npos);

    const auto after = trainer.optimizer_state();
    REQUIRE(after.size() == good.size());
    for (const auto& [name, t] : good) CHECK_MESSAGE(torch::equal(after.at(name), t), name);
  }

  TEST_CASE("malformed samples and options are errors that say what is wrong") {
    auto model = load_tiny();
    auto samples = make_samples(model, 1.0);
    auto trainer = make_trainer(model, trainer_options(2));

    auto bad = samples;
    bad[3].loss_mask.pop_back();
    const auto s1 = trainer.step(bad);
    REQUIRE_FALSE(s1.ok());
    CHECK(s1.status().message().find("sample 3: loss_mask (4) and old_logprobs (5)") != std::string::npos);

    bad = samples;
    bad[1].response[0] = 1024;
    const auto s2 = trainer.step(bad);
    REQUIRE_FALSE(s2.ok());
    CHECK(s2.status().message().find("sample 1: token id 1024 outside the vocabulary") != std::string::npos);

    bad = samples;
    for (auto& s : bad) std::fill(s.loss_mask.begin(), s.loss_mask.end(), 0);
    const auto s3 = trainer.step(bad);
    REQUIRE_FALSE(s3.ok());
    CHECK(s3.status().message().find("no model token") != std::string::npos);
    CHECK(trainer.step_count() == 0);

    auto options = trainer_options(2);
    options.algorithm.kl_coef = 0.1;
    const auto no_ref = PolicyTrainer::create(model, options);
    REQUIRE_FALSE(no_ref.ok());
    CHECK(no_ref.status().message().find("kl_coef > 0 needs a reference model") != std::string::npos);
    options = trainer_options(2);
    options.temperature = 0.0;
    const auto greedy = PolicyTrainer::create(model, options);
    REQUIRE_FALSE(greedy.ok());
    CHECK(greedy.status().message().find("temperature must be > 0") != std::string::npos);
  }

  TEST_CASE("GRPO without tools raises the reward: sample, score, group advantages, step") {
    // The task: use one token id as often as possible; reward = the fraction of a response's tokens
    // that are that id. The fixture's next-token distributions are nearly flat over 1024 ids, so the
    // id is the one sampled most often at step 0 (the likeliest start, still rare).
    constexpr int kGroups = 4, kPerGroup = 8, kNewTokens = 8, kSteps = 12;
    auto policy = load_tiny(torch::kFloat32);
    Qwen2CausalLm lm(policy, kGroups * kPerGroup, 32);
    const Tokenizer tokenizer = Tokenizer::byte_level({});
    GenerationEngine engine(lm, tokenizer);
    const std::vector<std::vector<int64_t>> prompts = {{5, 17, 300}, {42, 7, 901, 64}, {3, 1, 4, 1, 5}, {777, 12}};

    // One rollout of every prompt kPerGroup times at temperature 1, seeded by (step, request).
    struct Response {
      size_t group = 0;
      std::vector<int64_t> tokens;
      std::vector<double> logprobs;
    };
    auto roll_out = [&](int step) {
      torch::NoGradGuard no_grad;
      std::vector<Response> responses(kGroups * kPerGroup);
      for (int64_t id = 0; id < kGroups * kPerGroup; ++id) {
        GenerationRequest request;
        request.id = id;
        request.prompt = prompts[static_cast<size_t>(id / kPerGroup)];
        request.max_new_tokens = kNewTokens;
        request.sampling.temperature = 1.0;
        request.seed = 1000 * static_cast<uint64_t>(step) + static_cast<uint64_t>(id) + 1;
        REQUIRE(engine.admit(request).ok());
        responses[static_cast<size_t>(id)].group = static_cast<size_t>(id / kPerGroup);
      }
      while (engine.running() > 0) {
        for (const auto& update : engine.step()) {
          auto& r = responses[static_cast<size_t>(update.id)];
          r.tokens.insert(r.tokens.end(), update.tokens.begin(), update.tokens.end());
          r.logprobs.insert(r.logprobs.end(), update.logprobs.begin(), update.logprobs.end());
        }
      }
      for (int64_t id = 0; id < kGroups * kPerGroup; ++id) engine.release(id);
      return responses;
    };

    auto responses = roll_out(0);
    std::map<int64_t, int> counts;
    for (const auto& r : responses) {
      for (const int64_t t : r.tokens) ++counts[t];
    }
    const int64_t target = std::max_element(counts.begin(), counts.end(), [](const auto& a, const auto& b) {
                             return a.second < b.second;
                           })->first;
    auto rewards_of = [&](const std::vector<Response>& rs) {
      auto rewards = torch::zeros({kGroups, kPerGroup}, torch::kFloat32);
      for (size_t i = 0; i < rs.size(); ++i) {
        REQUIRE(rs[i].tokens.size() == static_cast<size_t>(kNewTokens));
        const auto hits = std::count(rs[i].tokens.begin(), rs[i].tokens.end(), target);
        rewards[static_cast<int64_t>(i) / kPerGroup][static_cast<int64_t>(i) % kPerGroup] =
            static_cast<float>(hits) / kNewTokens;
      }
      return rewards;
    };

    PolicyTrainerOptions options;
    options.train.lr = 1e-2;
    options.train.warmup_steps = 0;
    options.train.grad_clip = 1.0;
    options.train.weight_decay = 0.0;
    options.train.micro_batch = kGroups * kPerGroup;
    auto trainer = make_trainer(policy, options);
    std::vector<double> mean_reward;
    for (int step = 0;; ++step) {
      const auto rewards = rewards_of(responses);
      mean_reward.push_back(rewards.mean().item<double>());
      if (step == kSteps) break;
      const auto advantages = group_advantages(rewards);
      std::vector<PolicySample> samples;
      for (size_t i = 0; i < responses.size(); ++i) {
        const auto& r = responses[i];
        PolicySample s;
        s.prompt.assign(prompts[r.group].begin(), prompts[r.group].end());
        s.response.assign(r.tokens.begin(), r.tokens.end());
        s.loss_mask.assign(r.tokens.size(), 1);
        s.old_logprobs.assign(r.logprobs.begin(), r.logprobs.end());
        s.advantage = advantages[static_cast<int64_t>(i) / kPerGroup][static_cast<int64_t>(i) % kPerGroup].item<float>();
        samples.push_back(std::move(s));
      }
      const auto stats = trainer.step(samples);
      REQUIRE_MESSAGE(stats.ok(), stats.status().to_string());
      CHECK(stats->ratio_min > 0.99);  // the engine's log-probs are the trainer's: on-policy
      CHECK(stats->ratio_max < 1.01);
      responses = roll_out(step + 1);
    }
    std::ostringstream trace;
    for (const double r : mean_reward) trace << ' ' << r;
    MESSAGE("target id " << target << ", mean reward per step:" << trace.str());
    // Early steps move little (the target is rare: ~1% of tokens); then the reward climbs steeply.
    const double start = mean_reward.front(), end = (mean_reward[kSteps - 1] + mean_reward[kSteps]) / 2;
    CHECK(start > 0.0);
    CHECK(start < 0.05);
    CHECK(end >= 2 * start);
    CHECK(end - start >= 0.2);
  }
}

}  // namespace
}  // namespace torl::model

namespace torl::model {

TEST_SUITE("model") {
  TEST_CASE("supervised mode: the gradient of the token-mean cross-entropy on the masked tokens") {
    auto model = load_tiny();
    auto samples = make_samples(model, 1.0);
    for (auto& s : samples) {
      s.advantage = 1.0f;
      std::fill(s.old_logprobs.begin(), s.old_logprobs.end(), 0.0f);  // ignored
    }
    auto options = trainer_options(2);
    options.supervised = true;
    auto trainer = make_trainer(model, options);
    const auto stats = trainer.compute_gradients(samples);
    REQUIRE(stats.ok());
    const auto got = gradients(model);

    // by hand: -(sum of the masked tokens' log-probs) / (number of masked tokens), sample by sample
    for (auto& p : model.parameters()) p.mutable_grad() = torch::Tensor();
    double tokens = 0, loss = 0;
    for (const auto& s : samples) tokens += std::count(s.loss_mask.begin(), s.loss_mask.end(), 1);
    for (const auto& s : samples) {
      std::vector<int64_t> ids(s.prompt.begin(), s.prompt.end());
      ids.insert(ids.end(), s.response.begin(), s.response.end());
      const auto T = static_cast<int64_t>(ids.size());
      const auto lp = token_logprobs(model, torch::tensor(ids, torch::kInt64).unsqueeze(0),
                                     torch::ones({1, T}, torch::kInt64), torch::arange(T, torch::kInt64).unsqueeze(0));
      torch::Tensor sum = torch::zeros({}, torch::kFloat64);
      for (size_t j = 0; j < s.response.size(); ++j) {
        if (s.loss_mask[j]) sum = sum + lp.logprobs[0][static_cast<int64_t>(s.prompt.size() + j) - 1];
      }
      (-sum / tokens).backward();
      loss += (-sum / tokens).item<double>();
    }
    double max_diff = 0, max_grad = 0;
    for (const auto& [name, g] : gradients(model)) {
      max_diff = std::max(max_diff, (g - got.at(name)).abs().max().item<double>());
      max_grad = std::max(max_grad, g.abs().max().item<double>());
    }
    CHECK(max_grad > 1e-3);
    CHECK(max_diff < 1e-9);
    CHECK(stats->loss == doctest::Approx(loss).epsilon(1e-9));  // the cross-entropy, not -advantage
    CHECK(stats->loss > 0.1);
    CHECK(stats->clip_fraction == 0.0);
  }

  TEST_CASE("learning rate: linear warmup, then constant or a linear decay to a tenth") {
    auto model = load_tiny();
    auto options = trainer_options(2);
    options.train.lr = 1.0;
    options.train.warmup_steps = 4;
    options.train.steps = 14;
    auto constant = make_trainer(model, options);
    options.train.lr_schedule = config::LrSchedule::kLinear;
    auto decaying = make_trainer(model, options);
    const std::vector<std::pair<int64_t, double>> expected = {{0, 0.25}, {3, 1.0}, {4, 1.0}, {9, 0.55}, {14, 0.1}, {40, 0.1}};
    for (const auto& [step, lr] : expected) {
      constant.set_step_count(step);
      decaying.set_step_count(step);
      CHECK(constant.learning_rate() == doctest::Approx(step < 3 ? lr : 1.0));
      CHECK(decaying.learning_rate() == doctest::Approx(lr));
    }
  }
}

}  // namespace torl::model
