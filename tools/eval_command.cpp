// torl eval CONFIG: the command line of an eval (actors/eval_job.hpp runs it). torl eval bench: the
// pipeline's throughput with an injected sandbox latency, async beside rounds, at several C, in one
// run (actors/rollout_bench.hpp), printed as a table.
#include <iomanip>

#include "actors/rollout_bench.hpp"
#include "actors/eval_job.hpp"
#include "actors/run_setup.hpp"
#include "tools/arg_reader.hpp"
#include "tools/bench_flags.hpp"
#include "tools/commands.hpp"

namespace torl::tools {
namespace {

constexpr std::string_view kUsage =
    "usage: torl eval CONFIG [--set KEY=VALUE]... [--output DIR]\n"
    "       torl eval bench [--trajectories N] [--batch B] [--latency-ms LO-HI] [--repeat R] [--config FILE]\n"
    "                       [--set ...] [--modelled [--forward-ms FIXED,PER_TOKEN,PER_CACHED]]\n"
    "\n"
    "eval rolls out every problem of data.eval_files (eval.samples each; greedy unless eval.temperature > 0)\n"
    "with the tool loop of tool.*, scores the answers, writes DIR/<data set>.jsonl (one line per sample)\n"
    "and DIR/summary.json, and prints a table per data set. DIR is --output, eval.output_dir, or\n"
    "run.output_dir/run.name/eval. With trace.enabled the trace goes to trace.dir (default: RUN/trace\n"
    "for the default DIR, DIR/trace for any other).\n"
    "bench runs a random 4-layer model that writes the same 4 code blocks in every trajectory, with the\n"
    "real sandbox behind an extra random delay of LO-HI ms (default 50-500), and prints trajectories/s\n"
    "and the generator's busy fraction for rollout.mode async and rounds at C = 0, 1 and 4, after a short\n"
    "warm-up run; with --repeat R each configuration runs R times, interleaved, and its median run is shown.\n"
    "That model runs on the CPUs the sandbox workers use, so it measures their contention as much as the\n"
    "scheduling. --modelled puts a modelled accelerator in its place: each forward sleeps FIXED +\n"
    "PER_TOKEN x new tokens + PER_CACHED x attended cache positions ms and uses no CPU, as a GPU would;\n"
    "the default, 4.2,0.013,0, is Qwen2.5-1.5B's decode step on an H200 (tools/device/RESULTS.md).\n";

int usage_error(std::ostream& err, const std::string& message) {
  err << "torl eval: " << message << "\n" << kUsage;
  return kExitUsage;
}

int eval(const std::string& file, const std::vector<std::string>& sets, const std::string& output, std::ostream& out,
         std::ostream& err) {
  auto loaded = actors::load_run_config(file, sets);
  if (!loaded) return err << "torl eval: " << loaded.status().message() << "\n", kExitUsage;
  switch (actors::run_eval({.config = *loaded, .config_file = file, .output = output}, out, err)) {
    case actors::JobOutcome::kDone: return kExitOk;
    case actors::JobOutcome::kBadInput: return kExitUsage;
    case actors::JobOutcome::kFailed: break;
  }
  return kExitFailed;
}

// ---- bench ----

int bench(const std::string& file, const std::vector<std::string>& sets, actors::RolloutBenchOptions options,
          const std::string& latency, const std::string& forward_ms, bool modelled, std::ostream& out,
          std::ostream& err) {
  auto flags = read_bench_flags(file, sets, latency, forward_ms);
  if (!flags) return usage_error(err, flags.status().message());
  options.config = flags->config;
  options.low_ms = flags->low_ms, options.high_ms = flags->high_ms;
  if (modelled) {
    options.modelled = flags->forward;
  } else if (!forward_ms.empty()) {
    return usage_error(err, "--forward-ms goes with --modelled");
  }
  err << "torl eval bench: " << options.trajectories << " trajectories, " << options.batch << " slots, sandbox delay "
      << options.low_ms << "-" << options.high_ms << " ms + the real pool (" << options.config.tool.workers
      << " workers); model: "
      << (modelled ? "a modelled accelerator, a forward = " + options.modelled->to_string() + " (sleeping, no CPU)"
                   : std::string("the random 4-layer d=256 CPU model, sharing the CPUs with the sandbox workers"))
      << "\n";
  const auto result = actors::run_rollout_bench(options, [&](const std::string& line) {
    err << "torl eval bench: " << line << "\n";
  });
  if (!result) return err << "torl eval bench: " << result.status().message() << "\n", kExitFailed;
  out << "| mode | C | trajectories/s | generator busy | tokens/s | decode batch | forwards/step | rows/forward | "
         "tool calls | tool p50 / p99 ms | vs C=0 |"
      << (modelled ? " woke late ms/forward |" : "") << "\n"
      << "|---|---|---|---|---|---|---|---|---|---|---|" << (modelled ? "---|" : "") << "\n";
  for (const auto& row : result->rows) {
    const actors::MetricsSnapshot& s = row.run;
    out << "| " << (row.mode == config::RolloutMode::kAsync ? "async" : "rounds") << " | " << row.calls << " | "
        << std::fixed << std::setprecision(2) << s.trajectories_per_s << " | " << s.generator_busy_fraction << " | "
        << std::setprecision(0) << s.tokens_per_s << " | " << std::setprecision(1)
        << (s.steps ? static_cast<double>(s.generated_tokens) / static_cast<double>(s.steps) : 0.0) << " | "
        << std::setprecision(2) << row.forwards_per_step << " | " << std::setprecision(1) << row.rows_per_forward
        << " | " << std::setprecision(0) << s.tool_calls << " | " << s.tool_latency_p50_ms << " / "
        << s.tool_latency_p99_ms << " | " << std::setprecision(2) << row.vs_c0 << " |";
    if (modelled) out << " " << row.late_ms_per_forward << " |";
    out << std::endl;
  }
  out << "(" << result->tokens_per_trajectory << " generated tokens per trajectory on average; medians of "
      << options.repeats << " run(s) each)\n";
  return kExitOk;
}

}  // namespace

int eval_command(const Args& args, std::ostream& out, std::ostream& err) {
  const bool is_bench = !args.empty() && args[0] == "bench";
  const Args rest(args.begin() + (is_bench ? 1 : 0), args.end());
  std::string file, output, latency = "50-500", forward_ms;
  std::vector<std::string> sets;
  int64_t trajectories = 64, batch = 16, repeat = 1;
  bool modelled = false;
  ArgReader reader(rest);
  while (!reader.done()) {
    if (reader.flag("--help") || reader.flag("-h")) {
      out << kUsage;
      return kExitOk;
    }
    if (reader.values("--set", sets) || reader.value("--output", output) || reader.value("--config", file) ||
        reader.value("--latency-ms", latency) || reader.value("--forward-ms", forward_ms) ||
        reader.integer("--trajectories", trajectories) ||
        reader.integer("--batch", batch) || reader.integer("--repeat", repeat)) {
      continue;
    }
    if (is_bench && reader.flag("--modelled")) {
      modelled = true;
      continue;
    }
    if (!is_bench && reader.first_positional(file)) continue;
    reader.fail("unexpected argument '" + reader.peek() + "'");
  }
  if (!reader.error().empty()) return usage_error(err, reader.error());
  if (is_bench) {
    if (trajectories < 1 || batch < 1 || repeat < 1) {
      return usage_error(err, "--trajectories, --batch and --repeat must be >= 1");
    }
    actors::RolloutBenchOptions options;
    options.trajectories = trajectories, options.batch = batch, options.repeats = repeat;
    return bench(file, sets, options, latency, forward_ms, modelled, out, err);
  }
  if (file.empty()) return usage_error(err, "missing CONFIG");
  return eval(file, sets, output, out, err);
}

}  // namespace torl::tools
