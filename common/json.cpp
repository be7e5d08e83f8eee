#include "common/json.hpp"

#include <cmath>
#include <fstream>
#include <sstream>

namespace torl {

Expected<Json> parse_json(std::string_view text, const std::string& origin) {
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const Json::parse_error& e) {
    // e.what() is "[json.exception.parse_error.101] parse error at line 1, column 5: ..."; keep the
    // part after the bracketed id.
    std::string what = e.what();
    const auto bracket = what.find("] ");
    if (bracket != std::string::npos) what = what.substr(bracket + 2);
    return invalid_argument(origin + ": invalid JSON: " + what);
  }
}

Expected<Json> read_json_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found("cannot open '" + path.string() + "'");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return io_error("reading '" + path.string() + "' failed");
  return parse_json(text.str(), path.string());
}

Expected<std::vector<Json>> read_jsonl(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found("cannot open '" + path.string() + "'");
  std::vector<Json> rows;
  std::string line;
  for (size_t line_no = 1; std::getline(in, line); ++line_no) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto row = parse_json(line, path.string() + ":" + std::to_string(line_no));
    if (!row) return row.status();
    rows.push_back(std::move(row).value());
  }
  if (in.bad()) return io_error("reading '" + path.string() + "' failed");
  return rows;
}

std::string to_jsonl_line(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string json_type_name(const Json& value) {
  if (value.is_number()) return "number";
  return value.type_name();
}

double json_number(const Json& object, const std::string& key) {
  if (!object.is_object()) return std::nan("");
  const auto it = object.find(key);
  return it != object.end() && it->is_number() ? it->get<double>() : std::nan("");
}

}  // namespace torl
