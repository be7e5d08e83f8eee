// torl eval CONFIG: tool-integrated rollouts on the configured eval sets through the actor pipeline,
// per-trajectory results as JSONL, a table per data set. torl eval bench: the pipeline's throughput
// with an injected sandbox latency, async beside rounds, at several C, in one run.
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <map>

#include "actors/dataset.hpp"
#include "actors/pipeline.hpp"
#include "actors/rollout_bench.hpp"
#include "model/device.hpp"
#include "model/qwen2_causal_lm.hpp"
#include "sandbox/code_runner.hpp"
#include "tools/arg_reader.hpp"
#include "tools/commands.hpp"
#include "tools/run_setup.hpp"

namespace torl::tools {
namespace {

using actors::Trajectory;

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

// ---- shared by eval and bench ----

// A progress line on stderr, redrawn at most every 200 ms, and once at the end.
class Progress {
 public:
  Progress(std::ostream& err, size_t total) : err_(err), total_(total) {}
  void finished(const Trajectory& t) {
    ++done_;
    if (t.score && t.score->outcome == rewards::Outcome::kCorrect) ++correct_;
    const double now = clock_.now_ms();
    if (done_ < total_ && now - drawn_ms_ < 200) return;
    drawn_ms_ = now;
    const double rate = static_cast<double>(done_) / (now / 1000.0);
    const size_t width = 30, filled = total_ ? width * done_ / total_ : width;
    err_ << "\r[" << std::string(filled, '#') << std::string(width - filled, ' ') << "] " << done_ << "/" << total_
         << "  accuracy " << std::fixed << std::setprecision(3) << static_cast<double>(correct_) / static_cast<double>(done_)
         << "  " << std::setprecision(2) << rate << " traj/s  ETA "
         << std::setprecision(0) << (rate > 0 ? static_cast<double>(total_ - done_) / rate : 0) << " s   "
         << (done_ == total_ ? "\n" : "") << std::flush;
  }

 private:
  std::ostream& err_;
  size_t total_, done_ = 0, correct_ = 0;
  actors::RunClock clock_;
  double drawn_ms_ = -1e9;
};

// ---- eval ----

Json result_line(const Trajectory& t) {
  const bool correct = t.score && t.score->outcome == rewards::Outcome::kCorrect;
  return {{"id", t.job.id},
          {"problem", t.job.problem},
          {"problem_id", t.job.problem_id},
          {"sample", t.job.sample},
          {"gold", t.job.gold_answer},
          {"answer", t.score && t.score->answer ? Json(*t.score->answer) : Json(nullptr)},
          {"outcome", t.score ? rewards::outcome_name(t.score->outcome) : "not_scored"},
          {"correct", correct},
          {"reward", t.score ? Json(t.score->reward) : Json(nullptr)},
          {"tool_calls", t.tool_calls.size()},
          {"tool_errors", t.tool_errors()},
          {"void_calls", t.void_calls},
          {"response_tokens", t.response.size()},
          {"finish", actors::finish_reason_name(t.finish)},
          {"error", t.error},
          {"text", t.text}};
}

int eval(const std::string& file, const std::vector<std::string>& sets, std::string output, std::ostream& out,
         std::ostream& err) {
  auto loaded = load_run_config(file, sets);
  if (!loaded) return err << "torl eval: " << loaded.status().message() << "\n", kExitUsage;
  const config::Config& config = *loaded;
  if (config.run.deterministic) model::make_deterministic();
  if (config.data.eval_files.empty()) {
    return err << "torl eval: " << file << ": data.eval_files is empty: nothing to evaluate\n", kExitUsage;
  }
  const std::filesystem::path run_dir = std::filesystem::path(config.run.output_dir) / config.run.name;
  const std::filesystem::path out_dir = !output.empty() ? std::filesystem::path(output)
                                        : !config.eval.output_dir.empty() ? std::filesystem::path(config.eval.output_dir)
                                                                          : run_dir / "eval";

  // ---- tokenizer and model ----
  auto tokenizer = load_run_tokenizer(config);
  if (!tokenizer) return err << "torl eval: " << tokenizer.status().message() << "\n", kExitFailed;
  auto device = model::resolve_device(config.model.device);
  if (!device) return err << "torl eval: model.device: " << device.status().message() << "\n", kExitUsage;
  auto qwen = model::Qwen2Model::load(config.model.path, *device, model::scalar_type(config.model.dtype));
  if (!qwen) return err << "torl eval: " << qwen.status().message() << "\n", kExitFailed;

  // ---- jobs: every problem of every eval set, eval.samples times ----
  std::vector<DatasetRow> rows;
  auto listed = eval_jobs(config, *tokenizer, 0, rows);
  if (!listed) return err << "torl eval: " << listed.status().message() << "\n", kExitUsage;
  std::vector<actors::RolloutJob> jobs = std::move(*listed);
  for (const DatasetRow& row : rows) {
    if (row.skipped) {
      err << "torl eval: " << row.name << ": " << row.skipped << " problems longer than data.max_prompt_tokens ("
          << config.data.max_prompt_tokens << ") skipped\n";
    }
  }

  // ---- the pipeline: generators over the model, the configured sandbox, the trace ----
  auto runner = sandbox::start_code_runner(config.tool);
  if (!runner) return err << "torl eval: starting the sandbox: " << runner.status().message() << "\n", kExitFailed;
  std::vector<std::unique_ptr<model::Qwen2CausalLm>> lms;
  actors::PipelineMetrics metrics(config.rollout.generators);
  actors::PipelineSetup setup;
  setup.rollout = config.rollout;
  setup.tool = config.tool;
  setup.reward = config.reward;
  setup.tokenizer = &*tokenizer;
  for (int g = 0; g < config.rollout.generators; ++g) {
    auto lm = actors::create_generator_model(*qwen, config);
    if (!lm) return err << "torl eval: " << lm.status().message() << "\n", kExitUsage;
    lms.push_back(std::move(*lm));
    setup.models.push_back(lms.back().get());
  }
  if (qwen->config().eos_token_id >= 0) setup.eos_ids = {qwen->config().eos_token_id};
  setup.runner = runner->get();
  setup.metrics = &metrics;
  std::unique_ptr<actors::TraceRecorder> trace;
  if (config.trace.enabled) {
    // RUN/trace beside RUN/eval; an eval written elsewhere (--output, eval.output_dir) keeps its trace
    // inside its own folder, so that two evals under one parent never share one
    const std::filesystem::path dir = !config.trace.dir.empty() ? std::filesystem::path(config.trace.dir)
                                      : out_dir == run_dir / "eval" ? run_dir / "trace"
                                                                    : out_dir / "trace";
    auto opened = actors::TraceRecorder::open(dir, config, metrics.clock());
    if (!opened) return err << "torl eval: " << opened.status().message() << "\n", kExitFailed;
    trace = std::move(*opened);
    setup.trace = trace.get();
  }
  std::error_code made;
  std::filesystem::create_directories(out_dir, made);
  if (made) return err << "torl eval: cannot create '" << out_dir.string() << "': " << made.message() << "\n", kExitFailed;

  err << "torl eval: " << jobs.size() << " rollouts (" << config.eval.samples << " per problem) on "
      << rows.size() << " data sets, C = " << config.tool.max_calls << ", " << config.rollout.generators
      << " generator(s) x " << config.rollout.max_batch << " slots\n";
  Progress progress(err, jobs.size());
  const auto rolled = actors::run_rollouts(setup, std::move(jobs), [&](const Trajectory& t) { progress.finished(t); });
  if (trace) {
    if (Status closed = trace->close(); !closed.ok()) err << "torl eval: " << closed.message() << "\n";
  }
  if (!rolled) return err << "torl eval: " << rolled.status().message() << "\n", kExitFailed;
  const std::vector<Trajectory>& trajectories = *rolled;

  // ---- results: JSONL per data set, the table, the summary ----
  std::map<std::string, std::ofstream> files;
  for (const Trajectory& t : trajectories) {
    count(rows, t);
    auto& stream = files[t.job.dataset];
    if (!stream.is_open()) stream.open(out_dir / (t.job.dataset + ".jsonl"));
    stream << to_jsonl_line(result_line(t)) << '\n';
  }
  for (auto& [name, stream] : files) {
    stream.flush();
    if (!stream) return err << "torl eval: writing " << (out_dir / (name + ".jsonl")).string() << " failed\n", kExitFailed;
  }
  const actors::MetricsSnapshot snapshot = metrics.snapshot();
  Json summary = {{"metrics", snapshot.to_json()}, {"datasets", Json::array()}};
  for (const DatasetRow& r : rows) summary["datasets"].push_back(to_json(r));
  std::ofstream(out_dir / "summary.json") << summary.dump(2) << '\n';
  print_table(rows, out);
  err << "torl eval: " << std::fixed << std::setprecision(1) << snapshot.elapsed_s << " s, "
      << snapshot.tokens_per_s << " tokens/s, generator busy " << std::setprecision(2)
      << snapshot.generator_busy_fraction << ", tool p50/p99 " << std::setprecision(1) << snapshot.tool_latency_p50_ms
      << "/" << snapshot.tool_latency_p99_ms << " ms; results in " << out_dir.string() << "\n";
  return kExitOk;
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
