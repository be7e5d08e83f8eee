// The modelled accelerator of the benchmarks: what a forward costs, what it counts, and that a
// ScriptedLm over it makes the engine write exact text.
#include "model/modelled_lm.hpp"

#include <doctest/doctest.h>

#include <chrono>

#include "model/scripted_lm.hpp"

namespace torl::model {
namespace {

TEST_SUITE("model") {
  TEST_CASE("a modelled forward takes its modelled time, on a sleeping thread, and is counted") {
    const ForwardCost cost{2.0, 0.5, 0.25};
    CHECK(cost.ms(4, 10) == doctest::Approx(2.0 + 2.0 + 2.5));
    ModelledLm lm(3, 32, 50, cost);
    lm.extend({0, 2}, {{1, 2, 3}, {4}});  // 4 new tokens; the rows then hold 3 and 1: 4 cached: 5 ms
    const auto start = std::chrono::steady_clock::now();
    const torch::Tensor logits = lm.extend({0, 2}, {{5}, {6}});  // 2 new; 4 + 2 cached: 2 + 1 + 1.5 ms
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    CHECK(ms >= 4.5);  // a sleep lasts at least as long as asked
    CHECK(lm.late_s() >= 0);
    CHECK(logits.sizes() == torch::IntArrayRef({2, 50}));
    CHECK(lm.forwards() == 2);
    CHECK(lm.rows() == 4);
    CHECK(lm.new_tokens() == 6);
    CHECK(lm.modelled_s() == doctest::Approx((5.0 + 4.5) / 1000.0));
    // A truncated slot is charged for what it still holds.
    lm.truncate(0, 1);
    lm.extend({0}, {{7}});  // 1 new, 2 cached
    CHECK(lm.modelled_s() == doctest::Approx((5.0 + 4.5 + 3.0) / 1000.0));
  }

  TEST_CASE("a forward's cost parses from FIXED,PER_TOKEN,PER_CACHED and refuses anything else") {
    auto cost = ForwardCost::parse("4.2,0.013,0");
    REQUIRE(cost.ok());
    CHECK(cost->fixed_ms == doctest::Approx(4.2));
    CHECK(cost->per_token_ms == doctest::Approx(0.013));
    for (const char* bad : {"4.2,0.013", "4.2,0.013,0,1", "-1,0,0", "a,b,c", "4.2;0;0", ""}) {
      CAPTURE(bad);
      auto refused = ForwardCost::parse(bad);
      REQUIRE_FALSE(refused.ok());
      CHECK(refused.status().message().find("FIXED,PER_TOKEN,PER_CACHED") != std::string::npos);
    }
  }

  TEST_CASE("the engine over a scripted modelled model writes the script in one forward per step") {
    ModelledLm modelled(4, 64, 300, {0.0, 0.0, 0.0});
    ScriptedLm scripted(modelled, {{{1, 2}, {72, 105, 33}}, {{7, 7, 7}, {111, 107}}}, {}, 256);
    const Tokenizer tokenizer = Tokenizer::byte_level({"<eos>"});
    GenerationEngine engine(scripted, tokenizer);
    for (int64_t id = 0; id < 2; ++id) {
      GenerationRequest request;
      request.id = id;
      request.prompt = id == 0 ? std::vector<int64_t>{1, 2} : std::vector<int64_t>{7, 7, 7};
      request.sampling.temperature = 0;
      request.eos_ids = {256};
      REQUIRE(engine.admit(request).ok());
    }
    std::map<int64_t, std::vector<int64_t>> text;
    int steps = 0;
    for (auto updates = engine.step(); !updates.empty(); updates = engine.step(), ++steps) {
      for (const auto& update : updates) text[update.id].insert(text[update.id].end(), update.tokens.begin(), update.tokens.end());
    }
    CHECK(text[0] == std::vector<int64_t>{72, 105, 33, 256});
    CHECK(text[1] == std::vector<int64_t>{111, 107, 256});
    CHECK(modelled.forwards() == steps);
  }
}

}  // namespace
}  // namespace torl::model
