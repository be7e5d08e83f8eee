#include <doctest/doctest.h>

#include "model/stop_strings.hpp"
#include "model/tokenizer.hpp"

namespace torl::model {
namespace {

// Feeds `tokens` one by one; returns the index of the token at which a stop was found, or -1.
int stop_position(StopMatcher& matcher, const std::vector<std::string>& tokens, size_t* which = nullptr) {
  for (size_t t = 0; t < tokens.size(); ++t) {
    if (auto stop = matcher.append(tokens[t])) {
      if (which) *which = *stop;
      return static_cast<int>(t);
    }
  }
  return -1;
}

TEST_SUITE("model") {
  TEST_CASE("a stop string is found inside one token, across tokens, and byte by byte") {
    StopMatcher one({"```output"});
    CHECK(stop_position(one, {"print(2)\n```", "\n", "```output", "\n"}) == 2);
    StopMatcher across({"```output"});
    CHECK(stop_position(across, {"x\n``", "`out", "put", "\n"}) == 2);
    StopMatcher bytes({"```output"});
    std::vector<std::string> singles;
    for (const char c : std::string("ab```output")) singles.emplace_back(1, c);
    CHECK(stop_position(bytes, singles) == 10);
  }

  TEST_CASE("only the whole stop string stops, also when more text follows it in the same token") {
    StopMatcher matcher({"```output"});
    CHECK(stop_position(matcher, {"```python\n", "print(1)\n", "```\n", "```outpu", "t_not"}) == 4);
    StopMatcher miss({"```output"});
    CHECK(stop_position(miss, {"```outp", "ut"}) == 1);
    StopMatcher none({"```output"});
    CHECK(stop_position(none, {"``", "`out", "side"}) == -1);
  }

  TEST_CASE("the first stop to end wins, and reset forgets earlier text") {
    StopMatcher matcher({"END", "\n\n"});
    size_t which = 99;
    CHECK(stop_position(matcher, {"a\n", "\nEND"}, &which) == 1);
    CHECK(which == 1);
    StopMatcher again({"```output"});
    CHECK(stop_position(again, {"```out"}) == -1);
    again.reset();  // tool output was injected: "put" must not complete the old "```out"
    CHECK(stop_position(again, {"put"}) == -1);
  }

  TEST_CASE("token bytes let the matcher see a stop string that a tokenizer split across tokens") {
    const Tokenizer tokenizer = Tokenizer::byte_level({"<eos>"});
    StopMatcher matcher({"```output"});
    std::optional<size_t> stop;
    for (const int32_t id : tokenizer.encode("x\n```output\n")) {
      if ((stop = matcher.append(tokenizer.token_bytes(id)))) break;
    }
    CHECK(stop == 0u);
    CHECK(tokenizer.token_bytes(256) == "<eos>");
    CHECK(tokenizer.token_bytes(-1).empty());
    CHECK(tokenizer.token_bytes(100000).empty());
  }

  TEST_CASE("a stop string made of multi-byte characters is found across split characters") {
    StopMatcher matcher({"\xE2\x88\x8E"});  // U+220E, split across two tokens
    CHECK(stop_position(matcher, {"done \xE2\x88", "\x8E"}) == 1);
  }
}

}  // namespace
}  // namespace torl::model
