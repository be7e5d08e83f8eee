#include "actors/eval_job.hpp"

#include <fstream>
#include <iomanip>
#include <map>

#include "actors/dataset.hpp"
#include "actors/pipeline.hpp"
#include "actors/run_setup.hpp"
#include "actors/trace.hpp"
#include "model/device.hpp"
#include "model/qwen2_causal_lm.hpp"
#include "sandbox/code_runner.hpp"

namespace torl::actors {
namespace {

// A progress line on stderr, redrawn at most every 200 ms, and once at the end.
class Progress {
 public:
  Progress(std::ostream& log, size_t total) : log_(log), total_(total) {}
  void finished(const Trajectory& t) {
    ++done_;
    if (t.score && t.score->outcome == rewards::Outcome::kCorrect) ++correct_;
    const double now = clock_.now_ms();
    if (done_ < total_ && now - drawn_ms_ < 200) return;
    drawn_ms_ = now;
    const double rate = static_cast<double>(done_) / (now / 1000.0);
    const size_t width = 30, filled = total_ ? width * done_ / total_ : width;
    log_ << "\r[" << std::string(filled, '#') << std::string(width - filled, ' ') << "] " << done_ << "/" << total_
         << "  accuracy " << std::fixed << std::setprecision(3) << static_cast<double>(correct_) / static_cast<double>(done_)
         << "  " << std::setprecision(2) << rate << " traj/s  ETA "
         << std::setprecision(0) << (rate > 0 ? static_cast<double>(total_ - done_) / rate : 0) << " s   "
         << (done_ == total_ ? "\n" : "") << std::flush;
  }

 private:
  std::ostream& log_;
  size_t total_, done_ = 0, correct_ = 0;
  actors::RunClock clock_;
  double drawn_ms_ = -1e9;
};

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

}  // namespace

JobOutcome run_eval(const EvalJobOptions& job, std::ostream& out, std::ostream& log) {
  const config::Config& config = job.config;
  if (config.run.deterministic) model::make_deterministic();
  if (config.data.eval_files.empty()) {
    return log << "torl eval: " << job.config_file << ": data.eval_files is empty: nothing to evaluate\n", JobOutcome::kBadInput;
  }
  const std::filesystem::path run_dir = std::filesystem::path(config.run.output_dir) / config.run.name;
  const std::filesystem::path out_dir = !job.output.empty() ? std::filesystem::path(job.output)
                                        : !config.eval.output_dir.empty() ? std::filesystem::path(config.eval.output_dir)
                                                                          : run_dir / "eval";

  // ---- tokenizer and model ----
  auto tokenizer = load_run_tokenizer(config);
  if (!tokenizer) return log << "torl eval: " << tokenizer.status().message() << "\n", JobOutcome::kFailed;
  auto device = model::resolve_device(config.model.device);
  if (!device) return log << "torl eval: model.device: " << device.status().message() << "\n", JobOutcome::kBadInput;
  auto qwen = model::Qwen2Model::load(config.model.path, *device, model::scalar_type(config.model.dtype));
  if (!qwen) return log << "torl eval: " << qwen.status().message() << "\n", JobOutcome::kFailed;

  // ---- jobs: every problem of every eval set, eval.samples times ----
  std::vector<DatasetRow> rows;
  auto listed = eval_jobs(config, *tokenizer, 0, rows);
  if (!listed) return log << "torl eval: " << listed.status().message() << "\n", JobOutcome::kBadInput;
  std::vector<actors::RolloutJob> jobs = std::move(*listed);
  for (const DatasetRow& row : rows) {
    if (row.skipped) {
      log << "torl eval: " << row.name << ": " << row.skipped << " problems longer than data.max_prompt_tokens ("
          << config.data.max_prompt_tokens << ") skipped\n";
    }
  }

  // ---- the pipeline: generators over the model, the configured sandbox, the trace ----
  auto runner = sandbox::start_code_runner(config.tool);
  if (!runner) return log << "torl eval: starting the sandbox: " << runner.status().message() << "\n", JobOutcome::kFailed;
  std::vector<std::unique_ptr<model::Qwen2CausalLm>> lms;
  actors::PipelineMetrics metrics(config.rollout.generators);
  actors::PipelineSetup setup;
  setup.rollout = config.rollout;
  setup.tool = config.tool;
  setup.reward = config.reward;
  setup.tokenizer = &*tokenizer;
  for (int g = 0; g < config.rollout.generators; ++g) {
    auto lm = actors::create_generator_model(*qwen, config);
    if (!lm) return log << "torl eval: " << lm.status().message() << "\n", JobOutcome::kBadInput;
    lms.push_back(std::move(*lm));
    setup.models.push_back(lms.back().get());
  }
  if (qwen->config().eos_token_id >= 0) setup.eos_ids = {qwen->config().eos_token_id};
  setup.runner = runner->get();
  setup.metrics = &metrics;
  std::unique_ptr<actors::TraceRecorder> trace;
  if (config.trace.enabled) {
    // RUN/trace beside RUN/eval; an eval written elsewhere (--job.output, eval.output_dir) keeps its trace
    // inside its own folder, so that two evals under one parent never share one
    const std::filesystem::path dir = !config.trace.dir.empty() ? std::filesystem::path(config.trace.dir)
                                      : out_dir == run_dir / "eval" ? run_dir / "trace"
                                                                    : out_dir / "trace";
    auto opened = actors::TraceRecorder::open(dir, config, metrics.clock());
    if (!opened) return log << "torl eval: " << opened.status().message() << "\n", JobOutcome::kFailed;
    trace = std::move(*opened);
    setup.trace = trace.get();
  }
  std::error_code made;
  std::filesystem::create_directories(out_dir, made);
  if (made) return log << "torl eval: cannot create '" << out_dir.string() << "': " << made.message() << "\n", JobOutcome::kFailed;

  log << "torl eval: " << jobs.size() << " rollouts (" << config.eval.samples << " per problem) on "
      << rows.size() << " data sets, C = " << config.tool.max_calls << ", " << config.rollout.generators
      << " generator(s) x " << config.rollout.max_batch << " slots\n";
  Progress progress(log, jobs.size());
  const auto rolled = actors::run_rollouts(setup, std::move(jobs), [&](const Trajectory& t) { progress.finished(t); });
  if (trace) {
    if (Status closed = trace->close(); !closed.ok()) log << "torl eval: " << closed.message() << "\n";
  }
  if (!rolled) return log << "torl eval: " << rolled.status().message() << "\n", JobOutcome::kFailed;
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
    if (!stream) return log << "torl eval: writing " << (out_dir / (name + ".jsonl")).string() << " failed\n", JobOutcome::kFailed;
  }
  const actors::MetricsSnapshot snapshot = metrics.snapshot();
  Json summary = {{"metrics", snapshot.to_json()}, {"datasets", Json::array()}};
  for (const DatasetRow& r : rows) summary["datasets"].push_back(to_json(r));
  std::ofstream(out_dir / "summary.json") << summary.dump(2) << '\n';
  print_table(rows, out);
  log << "torl eval: " << std::fixed << std::setprecision(1) << snapshot.elapsed_s << " s, "
      << snapshot.tokens_per_s << " tokens/s, generator busy " << std::setprecision(2)
      << snapshot.generator_busy_fraction << ", tool p50/p99 " << std::setprecision(1) << snapshot.tool_latency_p50_ms
      << "/" << snapshot.tool_latency_p99_ms << " ms; results in " << out_dir.string() << "\n";
  return JobOutcome::kDone;
}

}  // namespace torl::actors
