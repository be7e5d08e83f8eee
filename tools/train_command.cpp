// torl train: GRPO with tool-integrated rollouts (DESIGN.md §1, §6). The rollout pipeline, a learner
// actor and this thread, which feeds the pipeline one step's groups at a time as far ahead as
// algorithm.max_staleness allows, and waits. Each step appends one line to RUN/metrics.jsonl and
// prints one on stderr; every train.checkpoint_every steps (and at the end) the learner writes a
// checkpoint. --resume continues from the newest checkpoint: the same data order, the metrics
// continued from the checkpoint's step.
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <mutex>
#include <sstream>

#include "actors/learner_actor.hpp"
#include "actors/pipeline.hpp"
#include "actors/train_data.hpp"
#include "model/checkpoint.hpp"
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
    "usage: torl train CONFIG [--set KEY=VALUE]... [--resume]\n"
    "\n"
    "Trains the model of model.path with GRPO on data.train_files for train.steps steps, with the tool\n"
    "loop of tool.* in every rollout. The run folder is run.output_dir/run.name: metrics.jsonl (one line a\n"
    "step), checkpoints/step-N (HF safetensors with config.json and tokenizer files, optimizer, data\n"
    "position). A run folder that already has checkpoints is only continued with --resume, which starts\n"
    "from the newest checkpoint (or from the base model when there is none yet).\n";

int usage_error(std::ostream& err, const std::string& message) {
  err << "torl train: " << message << "\n" << kUsage;
  return kExitUsage;
}

// The step's numbers: what the learner did, and what the batch looked like.
Json step_line(const actors::StepReport& r, const std::vector<int64_t>& problems, const actors::MetricsSnapshot& pipeline) {
  double reward = 0, correct = 0, calls = 0, errors = 0, length = 0, with_tool = 0;
  for (const Trajectory& t : r.trajectories) {
    reward += t.score ? t.score->reward : 0.0;
    correct += t.score && t.score->outcome == rewards::Outcome::kCorrect;
    calls += static_cast<double>(t.tool_calls.size());
    errors += t.tool_errors();
    length += static_cast<double>(t.response.size());
    with_tool += !t.tool_calls.empty();
  }
  const double n = std::max<double>(1, static_cast<double>(r.trajectories.size()));
  return {{"step", r.step},
          {"updated", r.updated},
          {"skipped_because", r.skipped_because},
          {"reward/mean", reward / n},
          {"reward/accuracy", correct / n},
          {"tool/calls_per_trajectory", calls / n},
          {"tool/use_rate", with_tool / n},
          {"tool/error_rate", calls > 0 ? errors / calls : 0.0},
          {"response/length_mean", length / n},
          {"policy/entropy", r.stats.entropy},
          {"policy/clip_fraction", r.stats.clip_fraction},
          {"policy/ppo_kl", r.stats.ppo_kl},
          {"policy/kl", r.stats.kl},
          {"loss/total", r.stats.loss},
          {"loss/pg", r.stats.pg_loss},
          {"optim/grad_norm", r.stats.grad_norm},
          {"optim/lr", r.stats.lr},
          {"groups/all_equal", r.groups_equal},
          {"groups/filtered", r.groups_filtered},
          {"staleness/max", r.max_staleness},
          {"staleness/mean", r.mean_staleness},
          {"time/rollout_wait_s", r.wait_ms / 1000.0},
          {"time/train_s", r.train_ms / 1000.0},
          {"time/publish_s", r.publish_ms / 1000.0},
          {"generator/busy_fraction", pipeline.generator_busy_fraction},
          {"generator/tokens_per_s", pipeline.tokens_per_s},
          {"tool/latency_p50_ms", pipeline.tool_latency_p50_ms},
          {"tool/latency_p99_ms", pipeline.tool_latency_p99_ms},
          {"data/problems", problems}};
}

std::string step_text(const Json& line, int64_t steps) {
  std::ostringstream text;
  text << std::fixed << "step " << line["step"].get<int64_t>() << "/" << steps << std::setprecision(3)
       << "  reward " << line["reward/mean"].get<double>() << "  acc " << line["reward/accuracy"].get<double>()
       << "  tools " << std::setprecision(2) << line["tool/calls_per_trajectory"].get<double>() << "/traj (err "
       << line["tool/error_rate"].get<double>() << ")  len " << std::setprecision(0)
       << line["response/length_mean"].get<double>() << std::setprecision(3) << "  ent "
       << line["policy/entropy"].get<double>() << "  clip " << line["policy/clip_fraction"].get<double>()
       << "  gnorm " << line["optim/grad_norm"].get<double>() << std::scientific << std::setprecision(1) << "  lr "
       << line["optim/lr"].get<double>() << std::fixed << std::setprecision(1) << "  "
       << line["time/rollout_wait_s"].get<double>() + line["time/train_s"].get<double>() << " s (rollout "
       << line["time/rollout_wait_s"].get<double>() << ", train " << line["time/train_s"].get<double>() << ")";
  if (!line["updated"].get<bool>()) text << "  NO UPDATE: " << line["skipped_because"].get<std::string>();
  return text.str();
}

// Keeps the metrics lines of steps <= `step` (a resumed run continues after them). Rewritten through a
// temporary file, so a crash here loses nothing.
Status keep_metrics_until(const std::filesystem::path& file, int64_t step) {
  std::ifstream in(file);
  if (!in) return {};
  std::string kept, line;
  while (std::getline(in, line)) {
    const Json parsed = Json::parse(line, nullptr, false);
    if (parsed.is_discarded() || !parsed.contains("step")) continue;  // a torn last line after a kill
    if (parsed["step"].get<int64_t>() <= step) kept += line + "\n";
  }
  const std::filesystem::path temporary = file.string() + ".tmp";
  std::ofstream(temporary) << kept;
  std::error_code ec;
  std::filesystem::rename(temporary, file, ec);
  if (ec) return io_error("rewriting '" + file.string() + "': " + ec.message());
  return {};
}

int train(const std::string& file, const std::vector<std::string>& sets, bool resume, std::ostream& out,
          std::ostream& err) {
  auto loaded = load_run_config(file, sets);
  if (!loaded) return err << "torl train: " << loaded.status().message() << "\n", kExitUsage;
  const config::Config& config = *loaded;
  const std::filesystem::path run_dir = std::filesystem::path(config.run.output_dir) / config.run.name;

  auto tokenizer = load_run_tokenizer(config);
  if (!tokenizer) return err << "torl train: " << tokenizer.status().message() << "\n", kExitFailed;
  auto data = actors::TrainData::load(config, *tokenizer);
  if (!data) return err << "torl train: " << file << ": " << data.status().message() << "\n", kExitUsage;
  if (data->skipped()) {
    err << "torl train: " << data->skipped() << " problems longer than data.max_prompt_tokens ("
        << config.data.max_prompt_tokens << ") left out\n";
  }

  // ---- where to start: the base model, or the newest checkpoint ----
  auto latest = model::latest_checkpoint(run_dir);
  if (!latest) return err << "torl train: " << latest.status().message() << "\n", kExitFailed;
  if (*latest && !resume) {
    return err << "torl train: " << run_dir.string() << " already has checkpoints (newest: " << (*latest)->string()
               << "); pass --resume to continue that run, or choose another run.name\n",
           kExitUsage;
  }
  auto device = model::resolve_device(config.model.device);
  if (!device) return err << "torl train: model.device: " << device.status().message() << "\n", kExitUsage;
  const auto dtype = model::scalar_type(config.model.dtype);
  auto base_config = model::Qwen2Config::load(std::filesystem::path(config.model.path) / "config.json");
  if (!base_config) return err << "torl train: " << base_config.status().message() << "\n", kExitFailed;
  std::optional<model::LoadedCheckpoint> checkpoint;
  if (*latest) {
    auto opened = model::load_checkpoint(**latest, *base_config);
    if (!opened) return err << "torl train: --resume: " << opened.status().message() << "\n", kExitFailed;
    checkpoint = std::move(*opened);
    if (checkpoint->state.value("seed", int64_t{-1}) != config.run.seed) {
      return err << "torl train: --resume: " << checkpoint->dir.string() << " was written with run.seed "
                 << checkpoint->state.value("seed", int64_t{-1}) << ", the config has " << config.run.seed
                 << ": the data order would differ\n",
             kExitUsage;
    }
  } else if (resume) {
    err << "torl train: --resume: no checkpoint in " << run_dir.string() << " yet; starting from the base model\n";
  }
  const std::filesystem::path weights_dir = checkpoint ? checkpoint->dir : std::filesystem::path(config.model.path);
  auto policy = model::Qwen2Model::load(weights_dir, *device, dtype);
  if (!policy) return err << "torl train: " << policy.status().message() << "\n", kExitFailed;
  auto sampler = model::Qwen2Model::load(weights_dir, *device, dtype);  // the generators' copy
  if (!sampler) return err << "torl train: " << sampler.status().message() << "\n", kExitFailed;
  std::optional<model::Qwen2Model> reference;
  if (config.algorithm.kl_coef > 0) {
    auto frozen = model::Qwen2Model::load(config.model.path, *device, dtype);
    if (!frozen) return err << "torl train: reference model: " << frozen.status().message() << "\n", kExitFailed;
    reference = std::move(*frozen);
  }
  auto trainer = model::PolicyTrainer::create(
      *policy, {config.train, config.algorithm, config.rollout.temperature > 0 ? config.rollout.temperature : 1.0},
      reference ? &*reference : nullptr);
  if (!trainer) return err << "torl train: " << trainer.status().message() << "\n", kExitUsage;
  const int64_t first_step = checkpoint ? checkpoint->step : 0;
  if (checkpoint) {
    if (Status s = trainer->load_optimizer_state(checkpoint->optimizer); !s.ok()) {
      return err << "torl train: --resume: " << checkpoint->dir.string() << ": " << s.message() << "\n", kExitFailed;
    }
    trainer->set_step_count(first_step);
  }

  std::error_code made;
  std::filesystem::create_directories(run_dir, made);
  if (made) return err << "torl train: cannot create '" << run_dir.string() << "': " << made.message() << "\n", kExitFailed;
  const std::filesystem::path metrics_file = run_dir / "metrics.jsonl";
  if (Status s = keep_metrics_until(metrics_file, first_step); !s.ok()) return err << "torl train: " << s.message() << "\n", kExitFailed;
  std::ofstream metrics_out(metrics_file, std::ios::app);
  if (!metrics_out) return err << "torl train: cannot write '" << metrics_file.string() << "'\n", kExitFailed;

  // ---- the pipeline over the sampler's copy, and the learner over the policy ----
  auto runner = sandbox::start_code_runner(config.tool);
  if (!runner) return err << "torl train: starting the sandbox: " << runner.status().message() << "\n", kExitFailed;
  const int64_t cache_length = config.data.max_prompt_tokens + config.rollout.max_response_tokens + 1;
  model::Qwen2CausalLm lm(*sampler, actors::generator_slots(config.rollout, config.tool), cache_length);
  actors::PipelineMetrics pipeline_metrics(1);
  actors::PipelineSetup setup;
  setup.rollout = config.rollout;
  setup.tool = config.tool;
  setup.reward = config.reward;
  setup.tokenizer = &*tokenizer;
  setup.models = {&lm};
  setup.weights = {&*sampler};
  if (policy->config().eos_token_id >= 0) setup.eos_ids = {policy->config().eos_token_id};
  setup.runner = runner->get();
  setup.metrics = &pipeline_metrics;

  const int64_t steps = config.train.steps;
  std::mutex mutex;
  std::condition_variable stepped;
  int64_t done = first_step;  // guarded by mutex
  Status failure;             // guarded by mutex: a checkpoint that could not be written ends the run
  const char* crash_hook = std::getenv("TORL_TEST_KILL_AFTER_STEP");  // tests: SIGKILL right after step N's line
  const int64_t kill_after = crash_hook ? std::atoll(crash_hook) : -1;

  actors::LearnerSetup learner;
  learner.trainer = &*trainer;
  learner.policy = &*policy;
  learner.prompts_per_step = config.rollout.prompts_per_step;
  learner.samples_per_prompt = config.rollout.samples_per_prompt;
  learner.algorithm = config.algorithm;
  learner.unscored_reward = config.reward.no_answer;
  learner.first_step = first_step;
  learner.on_step = [&](actors::StepReport& report) {
    const Json line = step_line(report, data->problems_of_step(report.step - 1), pipeline_metrics.snapshot());
    metrics_out << line.dump() << '\n' << std::flush;
    err << step_text(line, steps) << std::endl;
    Status written;
    const bool due = report.step == steps ||
                     (config.train.checkpoint_every > 0 && report.step % config.train.checkpoint_every == 0);
    if (due) {
      model::CheckpointContents contents;
      contents.step = report.step;
      contents.model = &*policy;
      contents.model_source = config.model.path;
      contents.optimizer = trainer->optimizer_state();
      contents.state = {{"seed", config.run.seed}, {"next_step", report.step}, {"config_file", file}};
      written = model::write_checkpoint(run_dir, contents, config.train.keep_checkpoints);
      if (written.ok()) err << "torl train: checkpoint step " << report.step << " written\n";
    }
    if (report.step == kill_after) std::raise(SIGKILL);
    std::lock_guard lock(mutex);
    done = report.step;
    if (!written.ok()) failure = written;
    stepped.notify_all();
  };

  err << "torl train: " << config.run.name << ": steps " << first_step << " -> " << steps << ", "
      << config.rollout.prompts_per_step << " prompts x " << config.rollout.samples_per_prompt << " samples a step, "
      << data->problems().size() << " problems, C = " << config.tool.max_calls << ", max_staleness "
      << config.algorithm.max_staleness << "; run folder " << run_dir.string() << "\n";
  {
    caf::actor_system_config system_config;
    system_config.set("logger.verbosity", caf::atom("quiet"));
    system_config.set("logger.file-verbosity", caf::atom("quiet"));
    caf::actor_system system(system_config);
    actors::LearnerApi learner_actor;
    actors::Pipeline pipeline(system, setup, [&learner_actor](Trajectory t) {
      caf::anon_send(learner_actor, actors::finished_atom::value, std::move(t));
    });
    learner.generators = pipeline.generators();
    // moved: a handle left here would keep the generators alive and the system from shutting down
    learner_actor = system.spawn<caf::detached>(actors::learner_actor, std::move(learner));

    // feed step k's groups once the weights are at least version k - max_staleness
    int64_t submitted = first_step;
    std::unique_lock lock(mutex);
    while (true) {
      while (submitted < steps && submitted <= done + config.algorithm.max_staleness) {
        lock.unlock();
        pipeline.submit(data->jobs_of_step(submitted++));
        lock.lock();
      }
      if (done >= steps || !failure.ok()) break;
      const int64_t seen = done;
      stepped.wait(lock, [&] { return done != seen || !failure.ok(); });
    }
    lock.unlock();
    caf::anon_send_exit(learner_actor, caf::exit_reason::user_shutdown);
  }
  if (!failure.ok()) return err << "torl train: " << failure.message() << "\n", kExitFailed;
  out << "torl train: " << config.run.name << ": " << steps << " steps done; metrics in " << metrics_file.string()
      << ", checkpoints in " << (run_dir / "checkpoints").string() << "\n";
  return kExitOk;
}

}  // namespace

int train_command(const Args& args, std::ostream& out, std::ostream& err) {
  std::string file;
  std::vector<std::string> sets;
  bool resume = false;
  ArgReader reader(args);
  while (!reader.done()) {
    if (reader.flag("--help") || reader.flag("-h")) {
      out << kUsage;
      return kExitOk;
    }
    if (reader.values("--set", sets)) continue;
    if (reader.flag("--resume")) {
      resume = true;
      continue;
    }
    if (file.empty() && reader.peek().rfind("--", 0) != 0) {
      file = reader.positional();
      continue;
    }
    reader.fail("unexpected argument '" + reader.peek() + "'");
  }
  if (!reader.error().empty()) return usage_error(err, reader.error());
  if (file.empty()) return usage_error(err, "missing CONFIG");
  return train(file, sets, resume, out, err);
}

}  // namespace torl::tools
