// torl tokenize / detokenize: text <-> token ids with a HuggingFace tokenizer.json, and a
// one-thread throughput benchmark of the tokenizer.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string_view>

#include "common/json.hpp"
#include "model/tokenizer.hpp"
#include "tools/arg_reader.hpp"
#include "tools/commands.hpp"
#include "tools/jsonl_map.hpp"

namespace torl::tools {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kTokenizeUsage =
    "usage: torl tokenize --tokenizer DIR_OR_FILE [--jsonl FILE]\n"
    "       torl tokenize bench --tokenizer DIR_OR_FILE --file F [--repeat N]\n"
    "\n"
    "Encodes text with a tokenizer.json (or a folder holding one); special tokens in the text are\n"
    "matched, none are added. With --jsonl, reads {\"text\": ...} lines and writes {\"ids\": "
    "[...]}\n"
    "lines in the same order; without, encodes all of stdin and prints the ids on one line.\n"
    "bench encodes F as one string N times (default 5) on one thread and prints the load time and\n"
    "the median tokens/s.\n";

constexpr std::string_view kDetokenizeUsage =
    "usage: torl detokenize --tokenizer DIR_OR_FILE [--jsonl FILE]\n"
    "\n"
    "Decodes ids to text. With --jsonl, reads {\"ids\": [...]} lines and writes {\"text\": ...}\n"
    "lines in the same order; without, reads whitespace-separated ids on stdin and prints the "
    "text.\n"
    "Invalid UTF-8 in the decoded bytes becomes U+FFFD.\n";

struct Options {
  std::string tokenizer;
  std::string jsonl;
  std::string file;
  long repeat = 5;
};

// Reads the flags of `args`; returns false (after printing why) on bad usage.
bool read_options(const Args& args, bool bench, std::string_view usage, const std::string& name,
                  Options& options, std::ostream& err) {
  ArgReader reader(args);
  while (!reader.done()) {
    if (reader.value("--tokenizer", options.tokenizer)) continue;
    if (!bench && reader.value("--jsonl", options.jsonl)) continue;
    if (bench && reader.value("--file", options.file)) continue;
    if (bench && reader.integer("--repeat", options.repeat)) continue;
    reader.fail("unexpected argument '" + reader.peek() + "'");
  }
  if (reader.error().empty() && options.tokenizer.empty()) reader.fail("missing --tokenizer");
  if (reader.error().empty() && bench && options.file.empty()) reader.fail("missing --file");
  if (reader.error().empty() && options.repeat < 1) reader.fail("--repeat must be >= 1");
  if (!reader.error().empty()) {
    err << name << ": " << reader.error() << "\n" << usage;
    return false;
  }
  return true;
}

bool wants_help(const Args& args) {
  return std::find_if(args.begin(), args.end(), [](const std::string& a) {
           return a == "--help" || a == "-h";
         }) != args.end();
}

std::string read_all(std::istream& in) {
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// map_jsonl over the file `path`.
template <class Convert>
int map_jsonl_file(const std::string& path, const std::string& name, std::ostream& out, std::ostream& err,
                   Convert convert) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    err << name << ": cannot open '" << path << "'\n";
    return kExitUsage;
  }
  return map_jsonl(in, path, name, out, err, convert);
}

Expected<std::vector<int32_t>> ids_field(const Json& row, const std::string& origin) {
  if (!row.is_object() || !row.contains("ids")) {
    return invalid_argument(origin + ": missing field 'ids'");
  }
  const Json& ids = row["ids"];
  if (!ids.is_array()) return invalid_argument(origin + ": field 'ids' must be an array");
  std::vector<int32_t> out;
  out.reserve(ids.size());
  for (const Json& id : ids) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX) {
      return invalid_argument(origin + ": field 'ids' must hold non-negative integers (got " +
                              id.dump() + ")");
    }
    out.push_back(id.get<int32_t>());
  }
  return out;
}

int bench(const Options& options, std::ostream& out, std::ostream& err) {
  const auto load_start = Clock::now();
  auto tokenizer = model::Tokenizer::load(options.tokenizer);
  const double load_ms =
      std::chrono::duration<double, std::milli>(Clock::now() - load_start).count();
  if (!tokenizer.ok()) {
    err << "torl tokenize bench: " << tokenizer.status().to_string() << "\n";
    return kExitFailed;
  }
  std::ifstream in(options.file, std::ios::binary);
  if (!in) {
    err << "torl tokenize bench: cannot open '" << options.file << "'\n";
    return kExitUsage;
  }
  const std::string text = read_all(in);
  std::vector<double> seconds;
  size_t tokens = 0;
  for (long i = 0; i < options.repeat; ++i) {
    const auto start = Clock::now();
    tokens = tokenizer->encode(text).size();
    seconds.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  const double first = seconds.front();
  std::sort(seconds.begin(), seconds.end());
  const double median = seconds[seconds.size() / 2];
  char line[256];
  std::snprintf(line, sizeof line, "load_ms %.1f\n", load_ms);
  out << line;
  std::snprintf(line, sizeof line, "file %s: %zu bytes, %zu tokens\n", options.file.c_str(),
                text.size(), tokens);
  out << line;
  std::snprintf(line, sizeof line,
                "encode (1 thread, %ld runs): median %.1f ms = %.2f M tokens/s, %.2f MB/s; first "
                "(cold cache) %.1f ms = %.2f M tokens/s\n",
                options.repeat, median * 1e3, tokens / median / 1e6, text.size() / median / 1e6,
                first * 1e3, tokens / first / 1e6);
  out << line;
  return kExitOk;
}

// Decoding skips ids the tokenizer does not have; a user who asks for them gets told instead.
Status check_in_vocabulary(const std::vector<int32_t>& ids, const model::Tokenizer& tokenizer, const std::string& where) {
  for (const int32_t id : ids) {
    if (id >= tokenizer.vocab_size() || tokenizer.token_bytes(id).empty()) {
      return invalid_argument(where + ": token id " + std::to_string(id) + " is not in the vocabulary (ids 0.." +
                              std::to_string(tokenizer.vocab_size() - 1) + ")");
    }
  }
  return Status();
}

// The tokenizer of --tokenizer, or nullopt after saying why on `err`.
std::optional<model::Tokenizer> load_or_report(const Options& options, const std::string& name,
                                               std::ostream& err) {
  auto tokenizer = model::Tokenizer::load(options.tokenizer);
  if (!tokenizer.ok()) {
    err << name << ": " << tokenizer.status().to_string() << "\n";
    return std::nullopt;
  }
  return std::move(tokenizer).value();
}

}  // namespace

int tokenize_command(const Args& args, std::ostream& out, std::ostream& err) {
  if (wants_help(args)) {
    out << kTokenizeUsage;
    return kExitOk;
  }
  const bool is_bench = !args.empty() && args[0] == "bench";
  const Args rest(args.begin() + (is_bench ? 1 : 0), args.end());
  const std::string name = is_bench ? "torl tokenize bench" : "torl tokenize";
  Options options;
  if (!read_options(rest, is_bench, kTokenizeUsage, name, options, err)) return kExitUsage;
  if (is_bench) return bench(options, out, err);

  auto tokenizer = load_or_report(options, name, err);
  if (!tokenizer) return kExitFailed;
  if (!options.jsonl.empty()) {
    return map_jsonl_file(options.jsonl, name, out, err,
                          [&](const Json& row, const std::string& origin) -> Expected<Json> {
                            auto text = required_field<std::string>(row, "text", origin);
                            if (!text.ok()) return text.status();
                            return Json{{"ids", tokenizer->encode(*text)}};
                          });
  }
  const std::vector<int32_t> ids = tokenizer->encode(read_all(std::cin));
  for (size_t i = 0; i < ids.size(); ++i) out << (i == 0 ? "" : " ") << ids[i];
  out << "\n";
  return kExitOk;
}

int detokenize_command(const Args& args, std::ostream& out, std::ostream& err) {
  if (wants_help(args)) {
    out << kDetokenizeUsage;
    return kExitOk;
  }
  const std::string name = "torl detokenize";
  Options options;
  if (!read_options(args, false, kDetokenizeUsage, name, options, err)) return kExitUsage;
  auto tokenizer = load_or_report(options, name, err);
  if (!tokenizer) return kExitFailed;
  if (!options.jsonl.empty()) {
    return map_jsonl_file(options.jsonl, name, out, err,
                          [&](const Json& row, const std::string& origin) -> Expected<Json> {
                            auto ids = ids_field(row, origin);
                            if (!ids.ok()) return ids.status();
                            if (Status s = check_in_vocabulary(*ids, *tokenizer, origin); !s.ok()) return s;
                            return Json{{"text", tokenizer->decode(*ids)}};
                          });
  }
  std::vector<int32_t> ids;
  std::string word;
  while (std::cin >> word) {
    char* end = nullptr;
    const long id = std::strtol(word.c_str(), &end, 10);
    if (*end != '\0' || id < 0 || id > INT32_MAX) {
      err << name << ": stdin: '" << word << "' is not a token id\n";
      return kExitUsage;
    }
    ids.push_back(static_cast<int32_t>(id));
  }
  if (Status s = check_in_vocabulary(ids, *tokenizer, "stdin"); !s.ok()) {
    err << name << ": " << s.message() << "\n";
    return kExitUsage;
  }
  out << tokenizer->decode(ids);
  return kExitOk;
}

}  // namespace torl::tools
