// The Qwen2 KV cache behind the generation engine, against the HF fixtures.
#include "model/qwen2_causal_lm.hpp"

#include <doctest/doctest.h>

#include <filesystem>

#include "tests/temp_dir.hpp"

namespace torl::model {
namespace {

const std::filesystem::path kFixtures = std::filesystem::path(TORL_SOURCE_DIR) / ".." / "shared" / "fixtures";

Qwen2Model load_fixture(const char* name) {
  const auto folder = kFixtures / name;
  REQUIRE_MESSAGE(std::filesystem::exists(folder), "shared fixtures missing: " << folder);
  auto model = Qwen2Model::load(folder, torch::kCPU, torch::kFloat32);
  REQUIRE_MESSAGE(model.ok(), model.status().message());
  return std::move(model).value();
}

std::vector<int64_t> row_tokens(const torch::Tensor& ids, const torch::Tensor& mask, int64_t row) {
  std::vector<int64_t> out;
  for (int64_t t = 0; t < ids.size(1); ++t) {
    if (mask[row][t].item<int64_t>() != 0) out.push_back(ids[row][t].item<int64_t>());
  }
  return out;
}

// The logits of the last token of `tokens` from one full forward without a cache: [V].
torch::Tensor full_forward_last(const Qwen2Model& model, const std::vector<int64_t>& tokens) {
  torch::NoGradGuard no_grad;
  const int64_t n = static_cast<int64_t>(tokens.size());
  const torch::Tensor ids = torch::tensor(tokens).view({1, n});
  const torch::Tensor positions = torch::arange(n).view({1, n});
  return model.forward(ids, positions, torch::ones({1, n}, torch::kInt64))[0][n - 1];
}

TEST_SUITE("model") {
  TEST_CASE("Qwen2CausalLm::create refuses what the model or the machine cannot hold, with the sizes asked for") {
    const Qwen2Model model = load_fixture("tiny-qwen2");  // 512 positions
    auto fits = Qwen2CausalLm::create(model, 4, 513);
    REQUIRE_MESSAGE(fits.ok(), fits.status().to_string());
    CHECK((*fits)->max_slots() == 4);
    CHECK((*fits)->max_length() == 513);

    auto too_long = Qwen2CausalLm::create(model, 4, 514);
    REQUIRE_FALSE(too_long.ok());
    CHECK((too_long.status().code() == StatusCode::kInvalidArgument));
    CHECK(too_long.status().message() ==
          "sequences of up to 513 tokens are more than the 512 positions the model supports (max_position_embeddings)");

    // 10^12 slots: far past any machine's memory, refused before allocating
    auto too_many = Qwen2CausalLm::create(model, 1000000000000, 100);
    REQUIRE_FALSE(too_many.ok());
    CHECK((too_many.status().code() == StatusCode::kUnavailable));
    CHECK(too_many.status().message().find("a KV cache of 1000000000000 slots x 100 tokens needs ") == 0);
    CHECK(too_many.status().message().find("this machine has free") != std::string::npos);

    CHECK_FALSE(Qwen2CausalLm::create(model, 0, 100).ok());
  }

  TEST_CASE("greedy generation through the batched engine equals HF's greedy_ids") {
    for (const char* name : {"tiny-qwen2", "tiny-qwen2-tied"}) {
      const Qwen2Model model = load_fixture(name);
      auto reference = read_safetensors(kFixtures / name / "reference.safetensors");
      REQUIRE(reference.ok());
      const torch::Tensor prompts = reference->at("prompt_ids"), mask = reference->at("prompt_mask");
      const torch::Tensor greedy = reference->at("greedy_ids");  // [2, 8 + 16]
      Qwen2CausalLm lm(model, 4, 64);
      const Tokenizer tokenizer = Tokenizer::byte_level({});
      GenerationEngine engine(lm, tokenizer);
      for (int64_t row = 0; row < prompts.size(0); ++row) {
        GenerationRequest request;
        request.id = row;
        request.prompt = row_tokens(prompts, mask, row);
        request.max_new_tokens = 16;
        request.sampling.temperature = 0;
        REQUIRE(engine.admit(request).ok());
      }
      std::vector<std::vector<int64_t>> generated(static_cast<size_t>(prompts.size(0)));
      for (int step = 0; step < 20 && engine.running() > 0; ++step) {
        for (const auto& update : engine.step()) {
          auto& out = generated[static_cast<size_t>(update.id)];
          out.insert(out.end(), update.tokens.begin(), update.tokens.end());
        }
      }
      for (int64_t row = 0; row < prompts.size(0); ++row) {
        std::vector<int64_t> expected;
        for (int64_t t = prompts.size(1); t < greedy.size(1); ++t) expected.push_back(greedy[row][t].item<int64_t>());
        CHECK_MESSAGE(generated[static_cast<size_t>(row)] == expected, name << " row " << row);
      }
    }
  }

  TEST_CASE("a model saved as safetensors loads back bit-exact") {
    for (const char* name : {"tiny-qwen2", "tiny-qwen2-tied"}) {
      const Qwen2Model model = load_fixture(name);
      testing::TempDir dir;
      std::filesystem::copy_file(kFixtures / name / "config.json", dir.path() / "config.json");
      REQUIRE(write_safetensors(dir.path() / "model.safetensors", model.named_parameters()).ok());
      auto again = Qwen2Model::load(dir.path(), torch::kCPU, torch::kFloat32);
      REQUIRE_MESSAGE(again.ok(), again.status().message());
      const TensorMap a = model.named_parameters(), b = again->named_parameters();
      REQUIRE(a.size() == b.size());
      for (const auto& [tensor_name, tensor] : a) {
        CHECK_MESSAGE(torch::equal(tensor, b.at(tensor_name)), name << ": " << tensor_name);
      }
    }
  }

  TEST_CASE("one forward per step: rows of far-apart lengths decoding beside new prompts match full forwards") {
    const Qwen2Model model = load_fixture("tiny-qwen2");
    for (const bool padded : {false, true}) {
      INFO("decode batch padded to its bucket: " << padded);
      const std::vector<int64_t> lengths = {2, 3, 4, 5, 40, 44, 48, 60};
      Qwen2CausalLm lm(model, 12, 80);
      lm.set_pad_decode(padded);
      std::vector<int64_t> slots;
      std::vector<std::vector<int64_t>> texts, prompts;
      for (size_t i = 0; i < lengths.size(); ++i) {
        std::vector<int64_t> text;
        for (int64_t t = 0; t < lengths[i]; ++t) text.push_back((7 * t + 13 * static_cast<int64_t>(i)) % 200 + 3);
        slots.push_back(static_cast<int64_t>(2 * i) % 9 + 1);  // not starting at slot 0, not in order, gaps
        texts.push_back(text);
        prompts.push_back(text);
      }
      lm.extend(slots, prompts);  // prefill, all rows in one forward
      CHECK(lm.forwards() == 1);
      std::vector<std::vector<int64_t>> next;
      for (size_t i = 0; i < texts.size(); ++i) {
        next.push_back({static_cast<int64_t>(i) + 100});
        texts[i].push_back(static_cast<int64_t>(i) + 100);
      }
      // 8 decoding rows of lengths 2..60 in one forward
      const torch::Tensor logits = lm.extend(slots, next);
      CHECK(lm.forwards() == 2);
      for (size_t i = 0; i < texts.size(); ++i) {
        CHECK_MESSAGE(torch::allclose(logits[static_cast<int64_t>(i)], full_forward_last(model, texts[i]), 1e-4, 1e-5),
                      "row " << i);
      }
      // and again with a new prompt (slot 0) and a 3-token resume (row 4) in the same forward
      std::vector<int64_t> step_slots = slots;
      std::vector<std::vector<int64_t>> step_tokens;
      for (size_t i = 0; i < texts.size(); ++i) step_tokens.push_back({static_cast<int64_t>(i) + 120});
      step_tokens[4] = {7, 8, 9};
      step_slots.push_back(0);
      step_tokens.push_back({11, 12, 13, 14, 15});
      texts.push_back({});
      for (size_t i = 0; i < step_tokens.size(); ++i) {
        texts[i].insert(texts[i].end(), step_tokens[i].begin(), step_tokens[i].end());
      }
      const torch::Tensor mixed = lm.extend(step_slots, step_tokens);
      CHECK(lm.forwards() == 3);
      for (size_t i = 0; i < texts.size(); ++i) {
        CHECK_MESSAGE(torch::allclose(mixed[static_cast<int64_t>(i)], full_forward_last(model, texts[i]), 1e-4, 1e-5),
                      "row " << i);
      }
    }
  }

  TEST_CASE("a padded decode step leaves the idle slots' caches as they were") {
    const Qwen2Model model = load_fixture("tiny-qwen2");
    Qwen2CausalLm padded(model, 4, 32), plain(model, 4, 32);
    padded.set_pad_decode(true);
    const std::vector<int64_t> a = {5, 6, 7}, b = {9, 10, 11, 12};
    for (auto* lm : {&padded, &plain}) lm->extend({0, 2}, {a, b});
    // slot 0 pauses (its next token is not fed) while slot 2 decodes twice in a batch padded to 4 slots
    for (int step = 0; step < 2; ++step) {
      CHECK(torch::allclose(padded.extend({2}, {{20 + step}})[0], plain.extend({2}, {{20 + step}})[0], 0, 1e-5));
    }
    CHECK(torch::allclose(padded.extend({0}, {{30}})[0], plain.extend({0}, {{30}})[0], 0, 1e-5));
  }

  TEST_CASE("decoding with the cache gives a full forward's logits at every step") {
    const Qwen2Model model = load_fixture("tiny-qwen2");
    Qwen2CausalLm lm(model, 2, 64);
    std::vector<int64_t> text = {5, 17, 300, 42, 7};
    torch::Tensor cached = lm.extend({1}, {text})[0];
    for (int step = 0; step < 12; ++step) {
      const torch::Tensor full = full_forward_last(model, text);
      CHECK(torch::allclose(cached, full, /*rtol=*/0, /*atol=*/1e-5));
      const int64_t next = full.argmax().item<int64_t>();
      text.push_back(next);
      cached = lm.extend({1}, {{next}})[0];
    }
  }

  TEST_CASE("pausing, appending and resuming equals prefilling the whole text, also in a mixed batch") {
    const Qwen2Model model = load_fixture("tiny-qwen2");
    const std::vector<int64_t> first = {9, 8, 7, 6}, injected = {100, 101, 102}, other = {3, 1, 4, 1, 5, 9, 2};
    Qwen2CausalLm pieces(model, 2, 64), whole(model, 1, 64);
    pieces.extend({0}, {first});
    // slot 1 joins with a different cache length and token count in the same batch as slot 0's resume
    const torch::Tensor both = pieces.extend({0, 1}, {injected, other});
    std::vector<int64_t> all = first;
    all.insert(all.end(), injected.begin(), injected.end());
    const torch::Tensor at_once = whole.extend({0}, {all});
    CHECK(torch::allclose(both[0], at_once[0], 0, 1e-5));
    CHECK(torch::allclose(both[1], full_forward_last(model, other), 0, 1e-5));
    // and the caches go on agreeing
    CHECK(torch::allclose(pieces.extend({0}, {{11}})[0], whole.extend({0}, {{11}})[0], 0, 1e-5));
  }

  TEST_CASE("a truncated cache continues as if the cut tokens had never been fed, also beside another row") {
    const Qwen2Model model = load_fixture("tiny-qwen2");
    const std::vector<int64_t> kept = {9, 8, 7, 6, 5}, cut = {40, 41, 42}, next = {100, 101}, other = {3, 1, 4};
    Qwen2CausalLm lm(model, 2, 64);
    std::vector<int64_t> written = kept;
    written.insert(written.end(), cut.begin(), cut.end());
    lm.extend({0}, {written});
    lm.truncate(0, static_cast<int64_t>(kept.size()));
    const torch::Tensor resumed = lm.extend({0, 1}, {next, other});
    std::vector<int64_t> text = kept;
    text.insert(text.end(), next.begin(), next.end());
    CHECK(torch::allclose(resumed[0], full_forward_last(model, text), 0, 1e-5));
    CHECK(torch::allclose(resumed[1], full_forward_last(model, other), 0, 1e-5));
    text.push_back(11);
    CHECK(torch::allclose(lm.extend({0}, {{11}})[0], full_forward_last(model, text), 0, 1e-5));
  }

  TEST_CASE("a cache freed while idle is allocated again and decodes as before; one in use is not freed") {
    const Qwen2Model model = load_fixture("tiny-qwen2");
    Qwen2CausalLm lm(model, 2, 64);
    const std::vector<int64_t> text = {5, 17, 300, 42, 7};
    lm.extend({1}, {text});
    CHECK_FALSE(lm.release_cache());  // slot 1 holds tokens
    lm.clear(1);
    CHECK(lm.release_cache());
    CHECK_FALSE(lm.release_cache());  // nothing left to free
    CHECK(lm.releases() == 1);
    // slot 0 this time, over a cache that was freed: what a full forward gives
    const torch::Tensor after = lm.extend({0}, {text})[0];
    CHECK(torch::allclose(after, full_forward_last(model, text), 0, 1e-5));
    CHECK(torch::allclose(lm.extend({0}, {{11}})[0], full_forward_last(model, {5, 17, 300, 42, 7, 11}), 0, 1e-5));
  }
}

}  // namespace
}  // namespace torl::model
