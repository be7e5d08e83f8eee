// JSON helpers on nlohmann-json: parse files and JSONL with errors that name the file and line, and
// read typed fields with errors that name the key. Pure functions; safe from any thread.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.hpp"

namespace torl {

using Json = nlohmann::json;

// Parses `text`; on failure the message starts with `origin` ("FILE" or "FILE:LINE").
Expected<Json> parse_json(std::string_view text, const std::string& origin);

// Reads and parses a whole JSON file.
Expected<Json> read_json_file(const std::filesystem::path& path);

// Reads a JSONL file: one JSON value per non-blank line, in order. The first bad line fails the
// whole read with "FILE:LINE: ..." so that no partial data set is used by accident.
Expected<std::vector<Json>> read_jsonl(const std::filesystem::path& path);

// Serialises one value as a single JSONL line (no trailing newline); invalid UTF-8 in strings is
// replaced with U+FFFD instead of throwing, so logging a model's raw text never fails.
std::string to_jsonl_line(const Json& value);

// The number at `key` of `object`, or NaN when `object` is not an object, or the key is missing, null
// or not a number (JSON has no NaN: a NaN metric is written as null).
double json_number(const Json& object, const std::string& key);

// Name of a JSON value's type as users read it: "string", "number", "object", ...
std::string json_type_name(const Json& value);

// The field `key` of `object` converted to T. Errors name `origin` and the key, e.g.
//   data/train.jsonl:12: field 'answer' must be a string (got number)
template <class T>
Expected<T> required_field(const Json& object, const std::string& key, const std::string& origin);

}  // namespace torl

// ---- implementation of the template ----
namespace torl::detail {
template <class T>
constexpr const char* json_expected_type() {
  if constexpr (std::is_same_v<T, bool>) return "a boolean";
  else if constexpr (std::is_integral_v<T>) return "an integer";
  else if constexpr (std::is_floating_point_v<T>) return "a number";
  else if constexpr (std::is_convertible_v<T, std::string>) return "a string";
  else return "a value of the expected type";
}
template <class T>
bool json_has_type(const Json& value) {
  if constexpr (std::is_same_v<T, bool>) return value.is_boolean();
  else if constexpr (std::is_integral_v<T>) return value.is_number_integer();
  else if constexpr (std::is_floating_point_v<T>) return value.is_number();
  else if constexpr (std::is_convertible_v<T, std::string>) return value.is_string();
  else return true;
}
}  // namespace torl::detail

template <class T>
torl::Expected<T> torl::required_field(const Json& object, const std::string& key,
                                       const std::string& origin) {
  if (!object.is_object()) {
    return invalid_argument(origin + ": expected a JSON object (got " + json_type_name(object) + ")");
  }
  const auto it = object.find(key);
  if (it == object.end()) return invalid_argument(origin + ": missing field '" + key + "'");
  if (!detail::json_has_type<T>(*it)) {
    return invalid_argument(origin + ": field '" + key + "' must be " +
                            detail::json_expected_type<T>() + " (got " + json_type_name(*it) + ")");
  }
  try {
    return it->get<T>();
  } catch (const std::exception& e) {
    return invalid_argument(origin + ": field '" + key + "': " + e.what());
  }
}
