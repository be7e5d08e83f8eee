#include <doctest/doctest.h>

#include "config/suggest.hpp"

namespace torl::config {
namespace {

TEST_SUITE("config") {
  TEST_CASE("edit distance counts insertions, deletions, substitutions and swaps") {
    CHECK(edit_distance("", "") == 0);
    CHECK(edit_distance("max_calls", "max_calls") == 0);
    CHECK(edit_distance("max_cals", "max_calls") == 1);
    CHECK(edit_distance("mxa_calls", "max_calls") == 1);
    CHECK(edit_distance("kitten", "sitting") == 3);
    CHECK(edit_distance("abc", "") == 3);
  }

  TEST_CASE("suggestions are made only for likely typos") {
    const std::vector<std::string> known = {"tool.max_calls", "tool.timeout_ms", "rollout.temperature",
                                            "train.lr"};
    CHECK(suggest_key("tool.max_cals", known) == "tool.max_calls");
    CHECK(suggest_key("tool.temperature", known) == "rollout.temperature");
    CHECK(suggest_key("rollout.temprature", known) == "rollout.temperature");
    CHECK(suggest_key("train.learning_rate", known) == std::nullopt);
    CHECK(suggest_word("asink", {"async", "rounds"}) == "async");
    CHECK(suggest_word("zzz", {"async", "rounds"}) == std::nullopt);
  }
}

}  // namespace
}  // namespace torl::config
