// The engine's slot and stop logic against a scripted model whose next token is the last fed token
// plus one (so greedy output is predictable) and which records everything it was fed.
#include <doctest/doctest.h>

#include <map>

#include "model/generation_engine.hpp"

namespace torl::model {
namespace {

class CountingModel : public CausalLm {
 public:
  explicit CountingModel(int64_t slots, int64_t length = 64) : slots_(slots), length_(length) {}
  int64_t max_slots() const override { return slots_; }
  int64_t max_length() const override { return length_; }
  torch::Tensor extend(const std::vector<int64_t>& slots, const std::vector<std::vector<int64_t>>& tokens) override {
    torch::Tensor logits = torch::zeros({static_cast<int64_t>(slots.size()), kVocab});
    for (size_t i = 0; i < slots.size(); ++i) {
      auto& history = fed[slots[i]];
      history.insert(history.end(), tokens[i].begin(), tokens[i].end());
      logits[static_cast<int64_t>(i)][(history.back() + 1) % kVocab] = 20.0f;
    }
    ++calls;
    return logits;
  }
  void clear(int64_t slot) override { fed[slot].clear(); }
  void truncate(int64_t slot, int64_t length) override { fed[slot].resize(static_cast<size_t>(length)); }

  static constexpr int64_t kVocab = 257;  // bytes and one special token
  std::map<int64_t, std::vector<int64_t>> fed;
  int calls = 0;

 private:
  int64_t slots_, length_;
};

GenerationRequest request(int64_t id, std::vector<int64_t> prompt, int64_t max_new = 8) {
  GenerationRequest r;
  r.id = id;
  r.prompt = std::move(prompt);
  r.max_new_tokens = max_new;
  r.sampling.temperature = 0;  // greedy
  return r;
}

TEST_SUITE("model") {
  TEST_CASE("every running sequence advances one token per step, in one forward") {
    CountingModel model(2);
    const Tokenizer tokenizer = Tokenizer::byte_level({"<eos>"});
    GenerationEngine engine(model, tokenizer);
    REQUIRE(engine.admit(request(1, {'a'}, 3)).ok());
    REQUIRE(engine.admit(request(2, {'x', 'y'}, 3)).ok());
    CHECK(engine.admit(request(3, {'q'})).code() == StatusCode::kUnavailable);  // two slots only
    std::map<int64_t, std::vector<int64_t>> out;
    std::map<int64_t, StopReason> reason;
    for (int s = 0; s < 5; ++s) {
      for (const auto& update : engine.step()) {
        out[update.id].insert(out[update.id].end(), update.tokens.begin(), update.tokens.end());
        if (update.stop != StopReason::kNone) reason[update.id] = update.stop;
      }
    }
    CHECK(model.calls == 3);
    CHECK(out[1] == std::vector<int64_t>{'b', 'c', 'd'});
    CHECK(out[2] == std::vector<int64_t>{'z', '{', '|'});
    CHECK(reason[1] == StopReason::kLength);
    CHECK(engine.running() == 0);
    engine.release(1);
    CHECK(engine.free_slots() == 1);
    CHECK(engine.admit(request(3, {'q'})).ok());
  }

  TEST_CASE("a stop string pauses a sequence, which resumes after injected tokens as one text") {
    CountingModel model(1);
    const Tokenizer tokenizer = Tokenizer::byte_level({"<eos>"});
    GenerationEngine engine(model, tokenizer);
    GenerationRequest r = request(7, {'a'}, 20);
    r.stops = {"cd"};
    REQUIRE(engine.admit(r).ok());
    std::vector<int64_t> generated;
    std::vector<GenerationUpdate> updates;
    while ((updates = engine.step()).size() == 1) {
      generated.insert(generated.end(), updates[0].tokens.begin(), updates[0].tokens.end());
      if (updates[0].stop != StopReason::kNone) break;
    }
    REQUIRE(updates.size() == 1);
    CHECK(updates[0].stop == StopReason::kStopString);
    CHECK(updates[0].stop_string == 0u);
    CHECK(generated == std::vector<int64_t>{'b', 'c', 'd'});
    CHECK(engine.step().empty());  // paused: nothing runs

    REQUIRE(engine.resume(7, {'=', '5'}).ok());
    const auto next = engine.step();
    REQUIRE(next.size() == 1);
    CHECK(next[0].tokens == std::vector<int64_t>{'6'});
    // The model saw exactly the whole text, as if it had been prefilled at once.
    CHECK(model.fed[0] == std::vector<int64_t>{'a', 'b', 'c', 'd', '=', '5'});
    CHECK(engine.resume(7, {'x'}).code() == StatusCode::kInvalidArgument);  // still generating
  }

  TEST_CASE("resuming can take back the last sampled tokens: the model continues as if never written") {
    CountingModel model(1);
    const Tokenizer tokenizer = Tokenizer::byte_level({"<eos>"});
    GenerationEngine engine(model, tokenizer);
    GenerationRequest r = request(7, {'a'}, 20);
    r.stops = {"cd"};
    REQUIRE(engine.admit(r).ok());
    while (engine.step()[0].stop == StopReason::kNone) {}  // b, c, d: "d" is pending, "b c" in the cache
    CHECK(model.fed[0] == std::vector<int64_t>{'a', 'b', 'c'});
    // Cannot reach into the prompt: only three tokens were sampled.
    CHECK(engine.resume(7, {}, {.drop = 4}).code() == StatusCode::kInvalidArgument);
    CHECK(engine.resume(7, {}, {.drop = -1}).code() == StatusCode::kInvalidArgument);
    REQUIRE(engine.resume(7, {'x'}, {.drop = 2}).ok());  // "c" leaves the cache, "d" is never fed
    const auto next = engine.step();
    REQUIRE(next.size() == 1);
    CHECK(next[0].tokens == std::vector<int64_t>{'y'});
    CHECK(model.fed[0] == std::vector<int64_t>{'a', 'b', 'x'});
    CHECK(next[0].stop == StopReason::kNone);
    engine.release(7);

    // With nothing left to feed, the last token that stays is fed again: its logits come back.
    REQUIRE(engine.admit(r).ok());
    while (engine.step()[0].stop == StopReason::kNone) {}  // b, c, d again
    REQUIRE(engine.resume(7, {}, {.drop = 2}).ok());       // "c" and "d" go; "b" is fed again
    const auto again = engine.step();
    REQUIRE(again.size() == 1);
    CHECK(again[0].tokens == std::vector<int64_t>{'c'});
    CHECK(model.fed[0] == std::vector<int64_t>{'a', 'b'});
  }

  TEST_CASE("a sequence resumed without stop strings runs past them, within its new token budget") {
    CountingModel model(1);
    const Tokenizer tokenizer = Tokenizer::byte_level({"<eos>"});
    GenerationEngine engine(model, tokenizer);
    GenerationRequest r = request(7, {'a'}, 50);
    r.stops = {"c"};
    REQUIRE(engine.admit(r).ok());
    while (engine.step()[0].stop == StopReason::kNone) {}  // b, c: stopped by "c"
    REQUIRE(engine.resume(7, {'a'}, {.stop_strings = false, .max_new_tokens = 4}).ok());
    std::vector<int64_t> generated;
    StopReason reason = StopReason::kNone;
    while (reason == StopReason::kNone) {
      const auto updates = engine.step();
      REQUIRE(updates.size() == 1);
      generated.insert(generated.end(), updates[0].tokens.begin(), updates[0].tokens.end());
      reason = updates[0].stop;
    }
    CHECK(generated == std::vector<int64_t>{'b', 'c', 'd', 'e'});  // "c" did not stop it
    CHECK(reason == StopReason::kLength);
  }

  TEST_CASE("EOS ends a sequence, and errors are reported for bad requests") {
    CountingModel model(1, 8);
    const Tokenizer tokenizer = Tokenizer::byte_level({"<eos>"});
    GenerationEngine engine(model, tokenizer);
    GenerationRequest r = request(1, {255}, 10);  // next token 256 = <eos>
    r.eos_ids = {256};
    REQUIRE(engine.admit(r).ok());
    const auto updates = engine.step();
    REQUIRE(updates.size() == 1);
    CHECK(updates[0].stop == StopReason::kEos);
    CHECK(engine.admit(request(1, {'a'})).code() == StatusCode::kInvalidArgument);  // id in use
    engine.release(1);
    CHECK(engine.admit(request(2, {})).code() == StatusCode::kInvalidArgument);
    CHECK(engine.admit(request(3, std::vector<int64_t>(8, 'a'))).code() == StatusCode::kInvalidArgument);
    CHECK(engine.resume(99, {1}).code() == StatusCode::kNotFound);
  }
}

}  // namespace
}  // namespace torl::model
