// torl demo: the pieces of the laptop demo (issue #9). `torl demo data` writes the demo's problems as
// JSONL train and eval splits, deterministic by seed (demo/tasks.hpp).
#include <filesystem>
#include <fstream>

#include "demo/tasks.hpp"
#include "tools/arg_reader.hpp"
#include "tools/commands.hpp"

namespace torl::tools {
namespace {

constexpr std::string_view kUsage =
    "usage: torl demo data [--out DIR] [--seed S] [--train N] [--eval N]\n"
    "\n"
    "data writes DIR/train.jsonl and DIR/eval.jsonl (default data/demo, seed 1, 4000 and 300 problems):\n"
    "products of multi-digit numbers, modular powers, sums of squares and counts of multiples, where the\n"
    "interpreter helps, and small sums and doublings, where it does not. The eval split uses its own\n"
    "stream, so the splits share no problem by construction of the seeds.\n";

int usage_error(std::ostream& err, const std::string& message) {
  err << "torl demo: " << message << "\n" << kUsage;
  return kExitUsage;
}

int write_split(const std::filesystem::path& file, uint64_t seed, long count, const std::string& prefix,
                std::ostream& err) {
  std::ofstream out(file);
  for (long i = 0; i < count; ++i) {
    out << to_jsonl_line(demo::to_json(demo::make_task(seed, i), prefix + std::to_string(i))) << '\n';
  }
  out.flush();
  if (!out) return err << "torl demo data: writing '" << file.string() << "' failed\n", kExitFailed;
  return kExitOk;
}

int data(const Args& args, std::ostream& out, std::ostream& err) {
  std::string dir = "data/demo";
  long seed = 1, train = 4000, eval = 300;
  ArgReader reader(args);
  while (!reader.done()) {
    if (reader.value("--out", dir) || reader.integer("--seed", seed) || reader.integer("--train", train) ||
        reader.integer("--eval", eval)) {
      continue;
    }
    reader.fail("unexpected argument '" + reader.peek() + "'");
  }
  if (!reader.error().empty()) return usage_error(err, reader.error());
  if (seed < 0 || train < 1 || eval < 1) return usage_error(err, "--seed must be >= 0, --train and --eval >= 1");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return err << "torl demo data: cannot create '" << dir << "': " << ec.message() << "\n", kExitFailed;
  const auto s = static_cast<uint64_t>(seed);
  if (int code = write_split(std::filesystem::path(dir) / "train.jsonl", 2 * s, train, "train-", err)) return code;
  if (int code = write_split(std::filesystem::path(dir) / "eval.jsonl", 2 * s + 1, eval, "eval-", err)) return code;
  out << "torl demo data: " << train << " train and " << eval << " eval problems in " << dir << "\n";
  return kExitOk;
}

}  // namespace

int demo_command(const Args& args, std::ostream& out, std::ostream& err) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    (args.empty() ? err : out) << kUsage;
    return args.empty() ? kExitUsage : kExitOk;
  }
  if (args[0] == "data") return data(Args(args.begin() + 1, args.end()), out, err);
  return usage_error(err, "unknown subcommand '" + args[0] + "'");
}

}  // namespace torl::tools
