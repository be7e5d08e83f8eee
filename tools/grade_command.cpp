// torl grade: judge one answer pair, a JSONL file of pairs, or measure the grader's speed.
#include <algorithm>
#include <chrono>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>
#include <string_view>

#include <unistd.h>

#include "common/json.hpp"
#include "rewards/answer.hpp"
#include "rewards/grade_bench.hpp"
#include "rewards/grader.hpp"
#include "tools/arg_reader.hpp"
#include "tools/commands.hpp"
#include "tools/jsonl_map.hpp"

namespace torl::tools {
namespace {

using Clock = std::chrono::steady_clock;
using OrderedJson = nlohmann::ordered_json;

constexpr std::string_view kUsage =
    "usage: torl grade --gold TEXT --pred TEXT\n"
    "       torl grade --jsonl FILE|-\n"
    "       torl grade bench [--file FILE] [--repeat N] [--math-verify]\n"
    "\n"
    "Each text's answer is its last \\boxed{} if it has one, otherwise the whole text without outer\n"
    "$...$ or \\(...\\).\n"
    "--gold/--pred prints 'equivalent' or 'different' and both answers; exit 0 when equivalent, 1 when\n"
    "different.\n"
    "--jsonl reads one {\"gold\": str, \"pred\": str} object per line (- for stdin) and writes, in order,\n"
    "one {\"equivalent\": bool, \"pred_answer\": str, \"gold_answer\": str} line per good input line. A bad\n"
    "line is reported on stderr as FILE:LINE: PROBLEM and skipped; the other lines are still graded, and\n"
    "the exit code is 2 if any line was bad, else 0.\n"
    "bench times answers_equivalent on one thread over the pairs of FILE (default data/grade-mix.jsonl:\n"
    "answers that differ in form, by kind: fractions and decimals, \\dfrac and \\frac, reordered sets,\n"
    "labelled answers, intervals, expressions for the symbolic path, big numbers, transport damage,\n"
    "text). Rows have gold/pred (optional kind: the group it is timed in; optional expected: the\n"
    "verdict it must get), or answer/solution (gold = answer, pred = last \\boxed{} of solution), as\n"
    "in ../shared/data/math500.jsonl. Each kind is timed in N rounds (default 5) of passes lasting at\n"
    "least 0.1 s; it prints the median grades/s of each kind and of the mix (every pair once), each\n"
    "kind's slowest pair (median of 3 single grades), the undecided pairs (out of the work budget) and\n"
    "any pair whose verdict is not its expected one (then exit 1). --math-verify also grades the same\n"
    "pairs with HF's Math-Verify (Python, one pass, tests/reference/math_verify_grade.py with the\n"
    "project's .venv/bin/python, or $TORL_PYTHON) and prints its speed and where its verdicts differ.\n";

constexpr std::string_view kDefaultBenchFile = "data/grade-mix.jsonl";
constexpr double kBenchSecondsPerKind = 0.1;

int usage_error(std::ostream& err, const std::string& message) {
  err << "torl grade: " << message << "\n" << kUsage;
  return kExitUsage;
}

// The verdict line for one --jsonl row, or the problem with it (prefixed with FILE:LINE).
Expected<OrderedJson> grade_row(const Json& row, const std::string& origin) {
  auto gold = required_field<std::string>(row, "gold", origin);
  if (!gold) return gold.status();
  auto pred = required_field<std::string>(row, "pred", origin);
  if (!pred) return pred.status();
  const rewards::Grade grade = rewards::grade_texts(*gold, *pred);
  return OrderedJson{{"equivalent", grade.equivalent},
                     {"pred_answer", grade.pred_answer},
                     {"gold_answer", grade.gold_answer}};
}

int grade_pair(const std::string& gold, const std::string& pred, std::ostream& out) {
  const rewards::Grade grade = rewards::grade_texts(gold, pred);
  out << (grade.equivalent ? "equivalent" : "different") << "\n"
      << "  gold: " << grade.gold_answer << "\n"
      << "  pred: " << grade.pred_answer << "\n";
  return grade.equivalent ? kExitOk : kExitFailed;
}

using rewards::BenchPair;

// Reads the benchmark pairs of `file`. Empty, with the problem on `err`, when the file cannot be read
// or a row is not a pair: a benchmark over part of a file would measure something else.
std::optional<std::vector<BenchPair>> read_bench_pairs(const std::string& file, std::ostream& err) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    err << "torl grade bench: cannot open '" << file << "'";
    if (file == kDefaultBenchFile) err << " (run from the repository root, next to ../shared, or pass --file)";
    err << "\n";
    return std::nullopt;
  }
  std::vector<BenchPair> pairs;
  std::string line;
  for (size_t line_no = 1; std::getline(in, line); ++line_no) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string origin = file + ":" + std::to_string(line_no);
    auto row = parse_json(line, origin);
    Status problem = row.status();
    if (row && row->is_object() && row->contains("gold")) {
      auto gold = required_field<std::string>(*row, "gold", origin);
      auto pred = required_field<std::string>(*row, "pred", origin);
      problem = !gold ? gold.status() : pred.status();
      BenchPair pair{.line = line_no};
      if (problem.ok() && row->contains("kind")) {
        auto kind = required_field<std::string>(*row, "kind", origin);
        if (kind) pair.kind = *kind;
        problem = kind.status();
      }
      if (problem.ok() && row->contains("expected")) {
        auto expected = required_field<bool>(*row, "expected", origin);
        if (expected) pair.expected = *expected;
        problem = expected.status();
      }
      if (problem.ok()) {
        pair.gold = rewards::answer_from_text(*gold);
        pair.pred = rewards::answer_from_text(*pred);
        pairs.push_back(std::move(pair));
      }
    } else if (row) {
      auto answer = required_field<std::string>(*row, "answer", origin);
      auto solution = required_field<std::string>(*row, "solution", origin);
      problem = !answer ? answer.status() : solution.status();
      if (problem.ok()) {
        // A solution without \boxed{} is graded as an empty prediction, as a response would be.
        pairs.push_back({.gold = *answer, .pred = rewards::extract_boxed(*solution).value_or(""), .line = line_no});
      }
    }
    if (!problem.ok()) {
      err << "torl grade bench: " << problem.message()
          << "\n  (each row needs string fields gold and pred, or answer and solution; kind a string and\n"
             "  expected a boolean where given)\n";
      return std::nullopt;
    }
  }
  if (in.bad()) {
    err << "torl grade bench: reading '" << file << "' failed\n";
    return std::nullopt;
  }
  if (pairs.empty()) {
    err << "torl grade bench: no rows in '" << file << "'\n";
    return std::nullopt;
  }
  return pairs;
}

// Single-quoted for /bin/sh.
std::string shell_quote(const std::string& text) {
  std::string quoted = "'";
  for (const char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

// Math-Verify's verdicts on `pairs`, in order, and the seconds it spent: the pairs go to
// tests/reference/math_verify_grade.py through a temporary file. Errors name what failed to run.
struct ReferenceVerdicts {
  std::vector<bool> equivalent;
  double seconds = 0;
};

Expected<ReferenceVerdicts> math_verify_verdicts(const std::vector<BenchPair>& pairs) {
  const char* env_python = std::getenv("TORL_PYTHON");
  const std::filesystem::path source(TORL_SOURCE_DIR);
  const std::string python = env_python ? env_python : (source / ".venv" / "bin" / "python").string();
  const auto script = source / "tests" / "reference" / "math_verify_grade.py";
  const auto scratch = std::filesystem::temp_directory_path() / ("torl-math-verify-" + std::to_string(::getpid()));
  std::error_code ignored;
  std::filesystem::create_directories(scratch, ignored);
  const auto input = scratch / "pairs.jsonl", output = scratch / "verdicts.jsonl", log = scratch / "stderr.txt";
  {
    std::ofstream in(input);
    for (const auto& pair : pairs) in << Json{{"gold", pair.gold}, {"pred", pair.pred}}.dump() << "\n";
  }
  const std::string command = shell_quote(python) + " " + shell_quote(script.string()) + " < " +
                              shell_quote(input.string()) + " > " + shell_quote(output.string()) + " 2> " +
                              shell_quote(log.string());
  const int status = std::system(command.c_str());
  std::ifstream out(output), err_text(log);
  const std::string errors{std::istreambuf_iterator<char>(err_text), {}};
  ReferenceVerdicts verdicts;
  for (std::string line; std::getline(out, line);) {
    const auto row = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (row.contains("equivalent")) verdicts.equivalent.push_back(row["equivalent"].get<bool>());
    if (row.contains("seconds")) verdicts.seconds = row["seconds"].get<double>();
  }
  std::filesystem::remove_all(scratch, ignored);
  if (status != 0 || verdicts.equivalent.size() != pairs.size()) {
    return Status(StatusCode::kUnavailable,
                  "Math-Verify (" + python + " " + script.string() + ") gave " +
                      std::to_string(verdicts.equivalent.size()) + " verdicts for " + std::to_string(pairs.size()) +
                      " pairs; run tools/setup, which installs it into .venv/, or set TORL_PYTHON. " + errors);
  }
  return verdicts;
}

void print_pair(std::ostream& out, const BenchPair& pair) {
  out << "line " << pair.line << " (gold '" << pair.gold << "', pred '" << pair.pred << "')";
}

int bench_command(const Args& args, std::ostream& out, std::ostream& err) {
  std::string file(kDefaultBenchFile);
  long rounds = 5;
  bool math_verify = false;
  ArgReader reader(args);
  while (!reader.done()) {
    if (reader.value("--file", file)) continue;
    if (reader.flag("--math-verify")) {
      math_verify = true;
      continue;
    }
    if (reader.integer("--repeat", rounds)) continue;
    if (reader.flag("--help") || reader.flag("-h")) {
      out << kUsage;
      return kExitOk;
    }
    reader.fail("unexpected argument '" + reader.peek() + "'");
  }
  if (reader.error().empty() && (rounds < 1 || rounds > 1000)) {
    reader.fail("--repeat must be between 1 and 1000 (got " + std::to_string(rounds) + ")");
  }
  if (!reader.error().empty()) {
    err << "torl grade bench: " << reader.error() << "\n" << kUsage;
    return kExitUsage;
  }
  const auto pairs = read_bench_pairs(file, err);
  if (!pairs) return kExitUsage;

  const auto result = rewards::run_grade_bench(*pairs, static_cast<int>(rounds), kBenchSecondsPerKind);
  out << "torl grade bench: " << pairs->size() << " pairs from " << file << ", " << result.kinds.size()
      << " kinds, one thread, median of " << result.rounds << " rounds (" << result.grades << " grades timed)\n";
  out << std::left << std::setw(18) << "kind" << std::right << std::setw(7) << "pairs" << std::setw(12) << "equivalent"
      << std::setw(13) << "grades/s" << std::setw(14) << "slowest us" << "\n";
  const auto row = [&](const rewards::KindSpeed& kind) {
    out << std::left << std::setw(18) << kind.kind << std::right << std::setw(7) << kind.pairs << std::setw(12)
        << kind.equivalent << std::setw(13) << std::fixed << std::setprecision(0) << kind.grades_per_second
        << std::setw(14) << std::setprecision(1) << kind.slowest_us << "\n";
  };
  for (const auto& kind : result.kinds) row(kind);
  row(result.all);
  out << "slowest pair: " << std::setprecision(1) << result.all.slowest_us << " us, ";
  print_pair(out, *result.all.slowest);
  out << "\nundecided (out of the grader's work budget): " << result.undecided << "\n";
  constexpr size_t kShown = 20;
  if (result.kinds.size() == 1) {  // a plain file of pairs: which ones differ
    for (size_t i = 0; i < result.different.size() && i < kShown; ++i) {
      out << "  different at ";
      print_pair(out, *result.different[i]);
      out << "\n";
    }
    if (result.different.size() > kShown) out << "  ... and " << result.different.size() - kShown << " more\n";
  }
  for (const BenchPair* pair : result.unexpected) {
    out << "  not as expected (" << (*pair->expected ? "equivalent" : "different") << "): ";
    print_pair(out, *pair);
    out << "\n";
  }
  if (!result.stable) {
    err << "torl grade bench: answers_equivalent gave different verdicts for the same pair across passes\n";
    return kExitFailed;
  }
  if (!result.unexpected.empty()) {
    err << "torl grade bench: " << result.unexpected.size() << " pairs not graded as the file expects\n";
    return kExitFailed;
  }
  if (!math_verify) return kExitOk;

  const auto reference = math_verify_verdicts(*pairs);
  if (!reference) return err << "torl grade bench: " << reference.status().message() << "\n", kExitFailed;
  std::vector<std::string> disagreements;
  for (size_t i = 0; i < pairs->size(); ++i) {
    const auto& pair = (*pairs)[i];
    const bool ours = std::find(result.different.begin(), result.different.end(), &pair) == result.different.end();
    if (ours == reference->equivalent[i]) continue;
    std::ostringstream line;
    line << "  line " << pair.line << ": torl " << (ours ? "equivalent" : "different") << ", math-verify "
         << (ours ? "different" : "equivalent") << ": gold '" << pair.gold << "', pred '" << pair.pred << "'\n";
    disagreements.push_back(line.str());
  }
  const double reference_rate = static_cast<double>(pairs->size()) / std::max(reference->seconds, 1e-9);
  out << std::setprecision(1) << "math-verify grades/s: " << reference_rate << " (one pass in " << std::setprecision(2)
      << reference->seconds << " s, one thread, Python); torl " << std::setprecision(0)
      << result.all.grades_per_second / reference_rate << "x as fast\n"
      << "math-verify agrees with torl on " << pairs->size() - disagreements.size() << "/" << pairs->size()
      << " pairs\n";
  for (size_t i = 0; i < disagreements.size() && i < kShown; ++i) out << disagreements[i];
  if (disagreements.size() > kShown) out << "  ... and " << disagreements.size() - kShown << " more\n";
  return kExitOk;
}

}  // namespace

int grade_command(const Args& args, std::ostream& out, std::ostream& err) {
  if (args.empty()) {
    err << kUsage;
    return kExitUsage;
  }
  if (args[0] == "bench") return bench_command(Args(args.begin() + 1, args.end()), out, err);

  std::optional<std::string> gold, pred, jsonl;
  ArgReader reader(args);
  while (!reader.done()) {
    std::string value;
    if (reader.value("--gold", value)) {
      gold = value;
    } else if (reader.value("--pred", value)) {
      pred = value;
    } else if (reader.value("--jsonl", value)) {
      jsonl = value;
    } else if (reader.flag("--help") || reader.flag("-h")) {
      out << kUsage;
      return kExitOk;
    } else {
      reader.fail("unexpected argument '" + reader.peek() + "'");
    }
  }
  if (!reader.error().empty()) return usage_error(err, reader.error());
  if (jsonl && (gold || pred)) return usage_error(err, "use either --gold and --pred, or --jsonl");
  if (jsonl) {
    if (*jsonl == "-") return map_jsonl(std::cin, "<stdin>", "torl grade", out, err, grade_row);
    std::ifstream in(*jsonl, std::ios::binary);
    if (!in) {
      err << "torl grade: cannot open '" << *jsonl << "'\n";
      return kExitUsage;
    }
    return map_jsonl(in, *jsonl, "torl grade", out, err, grade_row);
  }
  if (!gold || !pred) return usage_error(err, gold ? "missing --pred" : pred ? "missing --gold" : "missing --gold and --pred");
  return grade_pair(*gold, *pred, out);
}

}  // namespace torl::tools
