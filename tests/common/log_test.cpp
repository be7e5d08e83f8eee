#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "common/log.hpp"

namespace torl {
namespace {

TEST_SUITE("common") {
  TEST_CASE("log lines below the level are neither formatted nor written") {
    std::vector<std::pair<log::Level, std::string>> lines;
    log::set_sink([&](log::Level level, std::string_view line) { lines.emplace_back(level, line); });
    const log::Level saved = log::level();
    log::set_level(log::Level::kWarn);

    int evaluated = 0;
    auto count = [&] { return ++evaluated; };
    TORL_LOG(kInfo) << "hidden " << count();
    TORL_LOG(kWarn) << "shown " << count();
    TORL_LOG(kError) << "also shown";

    log::set_level(saved);
    log::set_sink(nullptr);
    REQUIRE(lines.size() == 2);
    CHECK(lines[0].first == log::Level::kWarn);
    CHECK(lines[0].second == "shown 1");
    CHECK(lines[1].second == "also shown");
    CHECK(evaluated == 1);
  }

  TEST_CASE("log levels parse by name and reject anything else") {
    CHECK(*log::parse_level("debug") == log::Level::kDebug);
    CHECK(*log::parse_level("error") == log::Level::kError);
    CHECK(log::parse_level("loud").status().message() ==
          "unknown log level 'loud' (expected debug, info, warn, error or off)");
  }
}

}  // namespace
}  // namespace torl
