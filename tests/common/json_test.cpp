#include <doctest/doctest.h>

#include "common/json.hpp"
#include "tests/temp_dir.hpp"

namespace torl {
namespace {

TEST_SUITE("common") {
  TEST_CASE("a JSONL file is read in order, skipping blank lines") {
    testing::TempDir dir;
    const auto file = dir.write("a.jsonl", "{\"id\": 1}\n\n{\"id\": 2}\r\n");
    const auto rows = read_jsonl(file);
    REQUIRE(rows.ok());
    REQUIRE(rows->size() == 2);
    CHECK((*rows)[0]["id"] == 1);
    CHECK((*rows)[1]["id"] == 2);
  }

  TEST_CASE("a bad JSONL line fails the whole read and names file and line") {
    testing::TempDir dir;
    const auto file = dir.write("a.jsonl", "{\"id\": 1}\n{\"id\": }\n");
    const auto rows = read_jsonl(file);
    REQUIRE_FALSE(rows.ok());
    CHECK(rows.status().message().rfind(file.string() + ":2: invalid JSON:", 0) == 0);
  }

  TEST_CASE("a missing file is not found, with its name") {
    const auto rows = read_jsonl("/nonexistent/x.jsonl");
    CHECK(rows.status().code() == StatusCode::kNotFound);
    CHECK(rows.status().message() == "cannot open '/nonexistent/x.jsonl'");
  }

  TEST_CASE("required_field names the key and the type it got") {
    const Json row = {{"problem", "1+1"}, {"answer", 2}};
    CHECK(*required_field<std::string>(row, "problem", "f:1") == "1+1");
    CHECK(required_field<std::string>(row, "answer", "f:1").status().message() ==
          "f:1: field 'answer' must be a string (got number)");
    CHECK(required_field<int>(row, "id", "f:1").status().message() == "f:1: missing field 'id'");
    CHECK(required_field<int>(Json::array(), "id", "f:1").status().message() ==
          "f:1: expected a JSON object (got array)");
  }

  TEST_CASE("a JSONL line of invalid UTF-8 text is still written") {
    const Json row = {{"text", std::string("ok\xff")}};
    CHECK(to_jsonl_line(row) == "{\"text\":\"ok\xEF\xBF\xBD\"}");
  }
}

}  // namespace
}  // namespace torl
