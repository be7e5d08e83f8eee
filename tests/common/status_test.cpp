#include <doctest/doctest.h>

#include "common/status.hpp"

namespace torl {
namespace {

Expected<int> parse_positive(int value) {
  if (value <= 0) return invalid_argument("must be positive (got " + std::to_string(value) + ")");
  return value;
}

Status pass_up(int value) {
  auto parsed = parse_positive(value);
  if (!parsed) return parsed.status().with_context("reading field 'x'");
  return Status();
}

TEST_SUITE("common") {
  TEST_CASE("a default Status is ok and adding context keeps it ok") {
    const Status status;
    CHECK(status.ok());
    CHECK(status.with_context("anything").ok());
    CHECK(status.to_string() == "ok");
  }

  TEST_CASE("context reads from the outermost action to the cause") {
    const Status status = not_found("no tensor lm_head.weight").with_context("loading 'a'").with_context("step 3");
    CHECK_FALSE(status.ok());
    CHECK(status.code() == StatusCode::kNotFound);
    CHECK(status.message() == "step 3: loading 'a': no tensor lm_head.weight");
  }

  TEST_CASE("Expected holds either the value or the error that explains its absence") {
    const auto good = parse_positive(4);
    REQUIRE(good.ok());
    CHECK(*good == 4);
    CHECK(good.status().ok());

    const Status bad = pass_up(-2);
    CHECK(bad.code() == StatusCode::kInvalidArgument);
    CHECK(bad.message() == "reading field 'x': must be positive (got -2)");
  }

  TEST_CASE("TORL_RETURN_IF_ERROR returns the first failure") {
    int reached = 0;
    auto run = [&]() -> Status {
      TORL_RETURN_IF_ERROR(Status());
      ++reached;
      TORL_RETURN_IF_ERROR(io_error("disk full"));
      ++reached;
      return Status();
    };
    const Status status = run();
    CHECK(status.code() == StatusCode::kIoError);
    CHECK(reached == 1);
  }
}

}  // namespace
}  // namespace torl
