// One JSONL line in, one JSONL line out: the loop that `torl grade --jsonl`, `torl tokenize --jsonl`
// and `torl detokenize --jsonl` share. A bad line (not JSON, a missing or mistyped field) is reported
// as FILE:LINE on `err` and skipped, so that one run over a large file shows every problem and still
// converts the rest, in order; the exit code is then 2.
#pragma once

#include <istream>
#include <ostream>
#include <string>

#include "common/json.hpp"
#include "tools/commands.hpp"

namespace torl::tools {

// `convert(row, origin)` returns the output object for one parsed row, or the Status of a bad row
// (whose message starts with `origin`, "FILE:LINE"). `command` names the caller in the summary.
template <class Convert>
int map_jsonl(std::istream& in, const std::string& name, const std::string& command, std::ostream& out,
              std::ostream& err, Convert convert) {
  size_t bad = 0, converted = 0;
  std::string line;
  for (size_t line_no = 1; std::getline(in, line); ++line_no) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string origin = name + ":" + std::to_string(line_no);
    auto row = parse_json(line, origin);
    auto result = row ? convert(*row, origin) : decltype(convert(*row, origin))(row.status());
    if (!result) {
      err << result.status().message() << "\n";
      ++bad;
      continue;
    }
    out << result->dump(-1, ' ', false, Json::error_handler_t::replace) << "\n";
    ++converted;
  }
  if (in.bad()) {
    err << command << ": reading '" << name << "' failed after " << converted + bad << " lines\n";
    return kExitFailed;
  }
  if (bad > 0) {
    err << command << ": " << bad << " bad line" << (bad == 1 ? "" : "s") << " in " << name << " skipped; "
        << converted << " converted\n";
    return kExitUsage;
  }
  return kExitOk;
}

}  // namespace torl::tools
