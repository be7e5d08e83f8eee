#include "actors/training_job.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <fstream>
#include <iomanip>
#include <map>
#include <sstream>

#include "actors/learner_actor.hpp"
#include "actors/pipeline.hpp"
#include "actors/run_endpoint.hpp"
#include "actors/run_report.hpp"
#include "actors/run_setup.hpp"
#include "actors/trace.hpp"
#include "actors/train_data.hpp"
#include "actors/train_metrics.hpp"
#include "model/checkpoint.hpp"
#include "model/device.hpp"
#include "model/qwen2_causal_lm.hpp"
#include "sandbox/code_runner.hpp"

namespace torl::actors {
namespace {

constexpr auto kProgressEvery = std::chrono::seconds(30);  // a line on a step that takes longer

// A stage's failure: the message (logged after "torl train: "), kInvalidArgument when the input is at
// fault (exit 2), anything else a failure (exit 1).
Status bad_input(std::string message) { return Status(StatusCode::kInvalidArgument, std::move(message)); }
Status failed(std::string message) { return Status(StatusCode::kInternal, std::move(message)); }

JobOutcome report(const Status& status, std::ostream& log) {
  log << "torl train: " << status.message() << "\n";
  return status.code() == StatusCode::kInvalidArgument ? JobOutcome::kBadInput : JobOutcome::kFailed;
}

// Where the run starts: the base model (none), or with --resume the run folder's newest checkpoint
// `latest` (its seed checked, newer step folders whose write never finished set aside).
Expected<std::optional<model::LoadedCheckpoint>> start_point(const TrainingJobOptions& job,
                                                             const std::filesystem::path& run_dir,
                                                             const std::optional<std::filesystem::path>& latest,
                                                             const model::Qwen2Config& base, std::ostream& log) {
  const config::Config& config = job.config;
  std::optional<model::LoadedCheckpoint> checkpoint;
  if (latest) {
    auto opened = model::load_checkpoint(*latest, base);
    if (!opened) return failed("--resume: " + opened.status().message());
    checkpoint = std::move(*opened);
    const int64_t seed = checkpoint->state.value("seed", int64_t{-1});
    if (seed != config.run.seed) {
      return bad_input("--resume: " + checkpoint->dir.string() + " was written with run.seed " + std::to_string(seed) +
                       ", the config has " + std::to_string(config.run.seed) + ": the data order would differ");
    }
  } else if (job.resume) {
    log << "torl train: --resume: no checkpoint in " << run_dir.string() << " yet; starting from the base model\n";
  }
  if (job.resume) {
    const int64_t from = checkpoint ? checkpoint->step : -1;
    if (checkpoint) log << "torl train: --resume: from " << checkpoint->dir.string() << " (step " << from << ")\n";
    auto aside = model::set_aside_incomplete_checkpoints(run_dir, from);
    if (!aside) return failed("--resume: " + aside.status().message());
    for (const auto& moved : *aside) {
      log << "torl train: --resume: a newer step folder had no state.json (its write never finished); kept as "
          << moved.string() << "\n";
    }
  }
  if (checkpoint && checkpoint->step > config.train.steps) {
    return bad_input("--resume: the checkpoint is at step " + std::to_string(checkpoint->step) + ", past train.steps (" +
                     std::to_string(config.train.steps) + "); raise train.steps to train on");
  }
  return checkpoint;
}

// The models of this process and the trainer over the policy: on the rank's device, the generators'
// copy where rollout.placement puts it; a launched rank joins its group (also alone: the path of N).
// On the heap: the trainer borrows the policy.
struct Models {
  torch::Device device = torch::kCPU, generator_device = torch::kCPU;
  std::optional<model::Qwen2Model> policy, sampler, reference;
  model::PolicyTrainerOptions options;
  std::optional<model::PolicyTrainer> trainer;
  int64_t first_step = 0;
};

// The learner's device (the rank's) and the generators' (the same, or rollout.device when separate),
// checked before anything is loaded.
Expected<std::pair<torch::Device, torch::Device>> resolve_devices(const TrainingJobOptions& job) {
  const config::Config& config = job.config;
  const int gpus = static_cast<int>(torch::cuda::device_count());
  auto device = model::rank_device(config.model.device, job.rank, gpus);
  if (!device) return bad_input("model.device: " + device.status().message());
  if (config.rollout.placement != config::Placement::kSeparate) return std::pair{*device, *device};
  auto generators = model::generator_device(config.rollout.device, job.rank, gpus);
  if (!generators) return bad_input("rollout.device: " + generators.status().message());
  if (Status s = model::WeightBroadcast::check_devices(*device, *generators); !s.ok()) {
    return bad_input("rollout.device: " + s.message());
  }
  return std::pair{*device, *generators};
}

Expected<std::unique_ptr<Models>> load_models(const TrainingJobOptions& job, std::pair<torch::Device, torch::Device> devices,
                                              const std::optional<model::LoadedCheckpoint>& checkpoint) {
  const config::Config& config = job.config;
  auto models = std::make_unique<Models>();
  models->device = devices.first;
  models->generator_device = devices.second;
  const auto dtype = model::scalar_type(config.model.dtype);
  const std::filesystem::path weights_dir = checkpoint ? checkpoint->dir : std::filesystem::path(config.model.path);
  auto policy = model::Qwen2Model::load(weights_dir, models->device, dtype);
  if (!policy) return failed(policy.status().message());
  models->policy = std::move(*policy);
  models->policy->set_gradient_checkpointing(config.model.gradient_checkpointing);
  auto sampler = model::Qwen2Model::load(weights_dir, models->generator_device, dtype);
  if (!sampler) return failed(sampler.status().message());
  models->sampler = std::move(*sampler);
  if (config.algorithm.kl_coef > 0) {
    auto frozen = model::Qwen2Model::load(config.model.path, models->device, dtype);
    if (!frozen) return failed("reference model: " + frozen.status().message());
    models->reference = std::move(*frozen);
  }
  models->options = {config.train, config.algorithm, config.rollout.temperature > 0 ? config.rollout.temperature : 1.0};
  if (job.rank.launched) {  // also a launch of one rank: the code path of N (NCCL on CUDA, else Gloo)
    auto group = model::make_rank_group(job.rank, models->device);
    if (!group) return failed(group.status().message());
    models->options.sync = *group;
  }
  auto trainer = model::PolicyTrainer::create(*models->policy, models->options,
                                              models->reference ? &*models->reference : nullptr);
  if (!trainer) return bad_input(trainer.status().message());
  models->trainer = std::move(*trainer);
  if (checkpoint) {
    if (Status s = models->trainer->load_optimizer_state(checkpoint->optimizer); !s.ok()) {
      return failed("--resume: " + checkpoint->dir.string() + ": " + s.message());
    }
    models->trainer->set_step_count(checkpoint->step);
    models->first_step = checkpoint->step;
  }
  return models;
}

// train.eval_every: rank 0 rolls the eval sets out through the training pipeline at the start, every
// eval_every steps and at the end; one line per eval in RUN/eval.jsonl and on the log. Job ids
// kIds + step * size + i tell eval trajectories from training ones. submit() from the run's thread,
// finished() from the pipeline's; evals of different steps may be in flight at once.
class Evals {
 public:
  static constexpr int64_t kIds = int64_t{1} << 50;

  Evals(std::vector<RolloutJob> jobs, std::vector<DatasetRow> rows, std::ofstream file, std::ostream& log)
      : jobs_(std::move(jobs)), rows_(std::move(rows)), file_(std::move(file)), log_(log) {}

  bool any() const { return !jobs_.empty(); }
  static bool is_eval(const Trajectory& t) { return t.id() >= kIds; }

  // The jobs of the eval at `step`, with their ids.
  std::vector<RolloutJob> submit(int64_t step) {
    std::vector<RolloutJob> jobs = jobs_;
    for (size_t i = 0; i < jobs.size(); ++i) jobs[i].id = kIds + step * size() + static_cast<int64_t>(i);
    std::lock_guard lock(mutex_);
    in_flight_[step] = {rows_, 0};
    return jobs;
  }

  // Counts an eval trajectory; returns its step once that eval is complete (its line written).
  std::optional<int64_t> finished(const Trajectory& t) {
    const int64_t step = (t.id() - kIds) / size();
    std::lock_guard lock(mutex_);
    auto& [rows, count_done] = in_flight_.at(step);  // made by submit
    count(rows, t);
    if (++count_done < size()) return std::nullopt;
    Json line = {{"step", step}, {"datasets", Json::array()}};
    std::ostringstream text;
    text << std::fixed << std::setprecision(3) << "eval at step " << step << ":";
    for (const DatasetRow& row : rows) {
      const Json j = to_json(row);
      line["datasets"].push_back(j);
      text << "  " << row.name << " acc " << j["accuracy"].get<double>() << " tool use " << j["tool_use_rate"].get<double>();
    }
    file_ << line.dump() << '\n' << std::flush;
    log_ << text.str() << std::endl;
    in_flight_.erase(step);
    return step;
  }

 private:
  int64_t size() const { return static_cast<int64_t>(jobs_.size()); }

  const std::vector<RolloutJob> jobs_;  // ids from 0
  const std::vector<DatasetRow> rows_;  // empty counts
  std::ofstream file_;                  // guarded by mutex_, as the log's lines
  std::ostream& log_;
  std::mutex mutex_;
  std::map<int64_t, std::pair<std::vector<DatasetRow>, int64_t>> in_flight_;  // guarded: step -> rows, finished
};

// The end of a run, once every actor is gone: the failure said, or (rank 0) a stopped run's last
// checkpoint, the summary lines, the before/after table, plot.png and, when every step is done,
// summary.json.
struct RunEnd {
  std::string name;
  std::filesystem::path run_dir;
  bool lead = false;
  int64_t first_step = 0, steps = 0;
  std::chrono::steady_clock::time_point started;
};

JobOutcome finish(const RunState& ended, const RunEnd& end, const std::function<Status(int64_t)>& write_checkpoint_at,
                  std::ostream& out, std::ostream& log) {
  const std::filesystem::path& run_dir = end.run_dir;
  const int64_t done = ended.done, checkpointed = ended.checkpointed, steps = end.steps;
  if (!ended.failure.ok()) {
    log << "torl train: " << ended.failure.message() << "\n";
    if (end.lead && checkpointed > 0) {
      log << "torl train: the last checkpoint, of step " << checkpointed << ", is in " << (run_dir / "checkpoints").string()
          << "; continue with --resume\n";
    }
    return JobOutcome::kFailed;
  }
  if (!end.lead) return JobOutcome::kDone;
  if (done < steps) {  // stopped by a signal
    if (checkpointed != done) {
      if (Status s = write_checkpoint_at(done); !s.ok()) return log << "torl train: " << s.message() << "\n", JobOutcome::kFailed;
    }
    const char* signal_name = ended.stop_signal == SIGINT ? "SIGINT" : "SIGTERM";
    if (done == end.first_step) {
      log << "torl train: stopped by " << signal_name << " before its first step; nothing new to save\n";
      return JobOutcome::kDone;
    }
    log << "torl train: stopped by " << signal_name << " after step " << done
        << "; the checkpoint of step " << done << " is in " << (run_dir / "checkpoints").string()
        << "; continue with --resume\n";
  }
  out << "torl train: " << end.name << ": " << done << " of " << steps << " steps done; metrics in "
      << (run_dir / "metrics.jsonl").string() << ", checkpoints in " << (run_dir / "checkpoints").string() << "\n";
  print_before_after(run_dir, out);
  if (done > 0) {
    if (Status s = write_run_plot(run_dir); !s.ok()) return log << "torl train: plot: " << s.message() << "\n", JobOutcome::kFailed;
    out << "plot: " << (run_dir / "plot.png").string() << "\n";
  }
  if (done == steps) {
    const double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - end.started).count();
    if (Status s = write_run_summary(run_dir, steps, wall_s); !s.ok()) return log << "torl train: " << s.message() << "\n", JobOutcome::kFailed;
  }
  return JobOutcome::kDone;
}

}  // namespace

model::MemoryPlanInput memory_plan_input(const config::Config& config, const model::Qwen2Config& shape) {
  model::MemoryPlanInput in;
  in.model = shape;
  in.dtype = model::scalar_type(config.model.dtype);
  in.master_copy = c10::elementSize(in.dtype) < 4 && config.train.master_dtype == config::DType::kFloat32;
  in.gradient_checkpointing = config.model.gradient_checkpointing;
  in.reference = config.algorithm.kl_coef > 0;
  in.length = config.data.max_prompt_tokens + config.rollout.max_response_tokens;
  in.sequences = config.train.micro_batch;
  if (config.train.micro_batch_tokens > 0) {
    in.sequences = std::clamp<int64_t>(config.train.micro_batch_tokens / in.length, 1, in.sequences);
  }
  in.logits_chunk = config.train.logits_chunk;
  in.generators = config.rollout.generators;
  in.cache_slots = actors::generator_slots(config.rollout, config.tool);
  in.cache_length = in.length + 1;
  in.separate = config.rollout.placement == config::Placement::kSeparate;
  // freed for the update only where the generators are idle then: an on-policy run (max_staleness 0)
  in.cache_freed = config.rollout.cache_during_update == config::CacheDuringUpdate::kFree &&
                   config.algorithm.max_staleness == 0;
  return in;
}

void TrainingJob::request_stop(int signal) {
  std::lock_guard lock(mutex_);
  early_signal_ = signal;
  if (control_) control_->request_stop(signal);
}

JobOutcome TrainingJob::run(const TrainingJobOptions& job, std::ostream& out, std::ostream& log) {
  const auto started = std::chrono::steady_clock::now();
  const config::Config& config = job.config;
  if (config.run.deterministic) model::make_deterministic();
  const model::RankPlacement& rank = job.rank;
  const bool lead = rank.rank == 0;  // writes metrics and checkpoints
  if (config.rollout.prompts_per_step % rank.world != 0) {
    return log << "torl train: rollout.prompts_per_step (" << config.rollout.prompts_per_step
               << ") must be a multiple of the number of learner processes (" << rank.world << ")\n",
           JobOutcome::kBadInput;
  }
  const std::filesystem::path run_dir = std::filesystem::path(config.run.output_dir) / config.run.name;

  auto tokenizer = load_run_tokenizer(config);
  if (!tokenizer) return log << "torl train: " << tokenizer.status().message() << "\n", JobOutcome::kFailed;
  auto data = actors::TrainData::load(config, *tokenizer);
  if (!data) return log << "torl train: " << job.config_file << ": " << data.status().message() << "\n", JobOutcome::kBadInput;
  if (data->skipped()) {
    log << "torl train: " << data->skipped() << " problems longer than data.max_prompt_tokens ("
        << config.data.max_prompt_tokens << ") left out\n";
  }

  // ---- where to start, the models and the trainer; nothing on disk changes before the checks ----
  auto latest = model::latest_checkpoint(run_dir);
  if (!latest) return report(failed(latest.status().message()), log);
  if (*latest && !job.resume) {
    return report(bad_input(run_dir.string() + " already has checkpoints (newest: " + (*latest)->string() +
                            "); pass --resume to continue that run, or choose another run.name"),
                  log);
  }
  auto devices = resolve_devices(job);
  if (!devices) return report(devices.status(), log);
  auto base_config = model::Qwen2Config::load(std::filesystem::path(config.model.path) / "config.json");
  if (!base_config) return report(failed(base_config.status().message()), log);
  auto checkpoint = start_point(job, run_dir, *latest, *base_config, log);
  if (!checkpoint) return report(checkpoint.status(), log);
  auto loaded = load_models(job, *devices, *checkpoint);
  if (!loaded) return report(loaded.status(), log);
  Models& models = **loaded;
  const int64_t first_step = models.first_step;

  std::error_code made;
  std::filesystem::create_directories(run_dir, made);
  if (made) return log << "torl train: cannot create '" << run_dir.string() << "': " << made.message() << "\n", JobOutcome::kFailed;
  const std::filesystem::path metrics_file = run_dir / "metrics.jsonl";
  std::ofstream metrics_out;
  if (lead) {
    if (Status s = keep_metrics_until(metrics_file, first_step); !s.ok()) return log << "torl train: " << s.message() << "\n", JobOutcome::kFailed;
    metrics_out.open(metrics_file, std::ios::app);
    if (!metrics_out) return log << "torl train: cannot write '" << metrics_file.string() << "'\n", JobOutcome::kFailed;
    std::filesystem::remove(run_dir / "summary.json", made);  // written again when this run finishes
  }

  // ---- the pipeline over the sampler's copy, and the learner over the policy ----
  auto runner = sandbox::start_code_runner(config.tool);
  if (!runner) return log << "torl train: starting the sandbox: " << runner.status().message() << "\n", JobOutcome::kFailed;
  auto created = actors::create_generator_model(*models.sampler, config);
  if (!created) return log << "torl train: " << created.status().message() << "\n", JobOutcome::kBadInput;
  std::unique_ptr<model::CausalLm> wrapped_lm;
  if (job.hooks.wrap_generator_model) wrapped_lm = job.hooks.wrap_generator_model(**created);
  actors::PipelineMetrics pipeline_metrics(1);
  actors::PipelineSetup setup;
  setup.rollout = config.rollout;
  setup.tool = config.tool;
  setup.reward = config.reward;
  setup.tokenizer = &*tokenizer;
  setup.models = {wrapped_lm ? wrapped_lm.get() : static_cast<model::CausalLm*>(created->get())};
  setup.weights = {&*models.sampler};
  if (models.policy->config().eos_token_id >= 0) setup.eos_ids = {models.policy->config().eos_token_id};
  setup.runner = runner->get();
  setup.metrics = &pipeline_metrics;
  setup.policy_version = static_cast<int32_t>(first_step);
  // trace.enabled: every rollout (training and evals) recorded for torl replay; a resumed run traces
  // into a folder of its own, so the earlier part's trace is kept
  std::unique_ptr<actors::TraceRecorder> trace;
  if (lead && config.trace.enabled) {
    const std::string folder = first_step == 0 ? "trace" : "trace-from-step-" + std::to_string(first_step);
    const std::filesystem::path dir = (config.trace.dir.empty() ? run_dir : std::filesystem::path(config.trace.dir)) / folder;
    auto opened = actors::TraceRecorder::open(dir, config, pipeline_metrics.clock());
    if (!opened) return log << "torl train: " << opened.status().message() << "\n", JobOutcome::kFailed;
    trace = std::move(*opened);
    setup.trace = trace.get();
  }
  std::unique_ptr<RunEndpoint> endpoint;  // run.metrics_port: /healthz and /metrics
  if (lead && config.run.metrics_port > 0) {
    auto started = RunEndpoint::start(config.run.metrics_port, first_step, config.train.steps, pipeline_metrics, **runner);
    if (!started) return log << "torl train: " << started.status().message() << "\n", JobOutcome::kFailed;
    endpoint = std::move(*started);
    log << "torl train: serving http://" << endpoint->address() << "/healthz and /metrics\n";
  }

  const int64_t steps = config.train.steps;
  // ---- evals (train.eval_every): rank 0 rolls the eval sets out through the same pipeline, at the
  // start, every eval_every steps and at the end; one line per eval in RUN/eval.jsonl ----
  const bool evaluating = lead && config.train.eval_every > 0 && !config.data.eval_files.empty();
  std::optional<Evals> evals;
  if (evaluating) {
    std::vector<DatasetRow> rows;
    auto listed = eval_jobs(config, *tokenizer, 0, rows);
    if (!listed) return report(bad_input(listed.status().message()), log);
    const std::filesystem::path eval_file = run_dir / "eval.jsonl";
    if (Status s = keep_metrics_until(eval_file, first_step); !s.ok()) return report(failed(s.message()), log);
    evals.emplace(std::move(*listed), std::move(rows), std::ofstream(eval_file, std::ios::app), log);
  }

  // The run's control (actors/training_run.hpp): what goes into the pipeline when, and when it ends.
  // Its actions are set below, once the pipeline exists.
  actors::FunctionActions actions;
  actors::TrainingRun run(
      {.first_step = first_step,
       .steps = steps,
       .max_staleness = config.algorithm.max_staleness,
       .eval_every = evals && evals->any() ? config.train.eval_every : 0,
       .launched = rank.launched,
       .quiet = std::chrono::duration_cast<std::chrono::milliseconds>(kProgressEvery)},
      actions);
  {
    std::lock_guard lock(mutex_);
    control_ = &run;
    if (early_signal_ != 0) run.request_stop(early_signal_);
  }
  const auto write_checkpoint_at = [&](int64_t step) {
    model::CheckpointContents contents;
    contents.step = step;
    contents.model = &*models.policy;
    contents.model_source = config.model.path;
    contents.optimizer = models.trainer->optimizer_state();
    contents.state = {{"seed", config.run.seed}, {"next_step", step}, {"config_file", job.config_file}};
    Status written = model::write_checkpoint(run_dir, contents, config.train.keep_checkpoints);
    if (written.ok()) log << "torl train: checkpoint step " << step << " written\n";
    return written;
  };

  actors::LearnerSetup learner;
  learner.trainer = &*models.trainer;
  learner.policy = &*models.policy;
  learner.prompts_per_step = config.rollout.prompts_per_step;
  learner.samples_per_prompt = config.rollout.samples_per_prompt;
  learner.groups_here = config.rollout.prompts_per_step / rank.world;
  learner.algorithm = config.algorithm;
  learner.max_infra_failures = config.train.max_infra_failures;
  learner.data_parallel = rank.launched;
  learner.first_step = first_step;
  learner.on_step = [&](actors::StepReport& report) {
    Status written;
    const bool asked = run.state().stop_signal != 0;
    const auto sums = batch_sums(report, models.options.sync.get(), asked);  // every rank takes part
    const bool stop = sums.stop_requests > 0;
    const bool due = lead && (report.step == steps || stop ||
                              (config.train.checkpoint_every > 0 && report.step % config.train.checkpoint_every == 0));
    if (lead) {
      const Json line = step_line(report, sums, data->problems_of_step(report.step - 1), pipeline_metrics.snapshot());
      metrics_out << line.dump() << '\n' << std::flush;
      log << step_text(line, steps) << std::endl;
      if (endpoint) endpoint->on_step(line);
    }
    if (due) written = write_checkpoint_at(report.step);
    if (job.hooks.after_step) {
      job.hooks.after_step(report.step, [&](std::chrono::seconds limit) { run.wait_for_stop(limit); });
    }
    if (!written.ok()) {
      if (endpoint) endpoint->failed(written.message());
      run.fail(written);  // a checkpoint that could not be written ends the run
    }
    run.step_done(report.step, due && written.ok(), stop);
  };

  if (lead) log << "torl train: " << config.run.name << ": steps " << first_step << " -> " << steps << ", "
      << config.rollout.prompts_per_step << " prompts x " << config.rollout.samples_per_prompt << " samples a step, "
      << data->problems().size() << " problems, C = " << config.tool.max_calls << ", max_staleness "
      << config.algorithm.max_staleness << (rank.world > 1 ? ", " + std::to_string(rank.world) + " learner processes" : "")
      << (config.rollout.placement == config::Placement::kSeparate ? ", generators on " + models.generator_device.str() : "")
      << "; run folder " << run_dir.string() << "\n";
  {
    caf::actor_system_config system_config;
    system_config.set("logger.verbosity", caf::atom("quiet"));
    system_config.set("logger.file-verbosity", caf::atom("quiet"));
    caf::actor_system system(system_config);
    // An actor that dies of an exception (out of memory, a bug) ends the run with its name and error;
    // nothing after the last checkpoint is saved, nothing is trained on what it left unfinished.
    setup.on_fault = [&](const std::string& actor, const std::string& what) {
      const Status failed(StatusCode::kInternal, "the " + actor + " actor failed: " + what);
      if (endpoint) endpoint->failed(failed.message());
      run.fail(failed);
    };
    actors::LearnerApi learner_actor;
    std::atomic<int64_t> rollouts_finished = 0;  // training trajectories back from the pipeline
    actors::Pipeline pipeline(system, setup, [&](Trajectory t) {
      if (Evals::is_eval(t)) {
        if (const auto step = evals->finished(t)) run.eval_done(*step);
        return;
      }
      ++rollouts_finished;
      caf::anon_send(learner_actor, actors::finished_atom::value, std::move(t));
    });
    learner.generators = pipeline.generators();
    if (config.rollout.placement == config::Placement::kSeparate) {  // new weights reach the generators' device over c10d
      auto broadcast = model::WeightBroadcast::start(
          models.sampler->named_parameters(), models.device, models.generator_device,
          [generators = pipeline.generators()](int32_t version, std::shared_ptr<const model::TensorMap> weights) {
            for (const auto& generator : generators) {
              caf::anon_send(generator, actors::weights_atom::value, actors::WeightsUpdate{version, weights});
            }
          });
      if (!broadcast) return report(failed("rollout.placement: " + broadcast.status().message()), log);
      learner.broadcast = *broadcast;
    }
    const std::shared_ptr<model::WeightBroadcast> broadcast = learner.broadcast;
    // moved: a handle left here would keep the generators alive and the system from shutting down
    learner_actor = actors::spawn_reporting(system, true, "learner", setup.on_fault, actors::learner_actor, std::move(learner));

    actions.step = [&](int64_t step) { pipeline.submit(data->jobs_of_step(step, rank.rank, rank.world)); };
    actions.eval = [&](int64_t step) { pipeline.submit(evals->submit(step)); };
    actions.stop = [&] {
      if (endpoint) endpoint->stopping();
    };
    actions.quiet = [&](int64_t done, int64_t submitted) {  // a long step: how far its rollouts are
      if (!lead) return;
      const int64_t per_step = config.rollout.prompts_per_step / rank.world * config.rollout.samples_per_prompt;
      const int64_t of_done = std::max<int64_t>(0, rollouts_finished - (done - first_step) * per_step);
      log << "torl train: step " << done + 1 << " in flight: " << std::min(of_done, per_step) << " of " << per_step
          << " rollouts finished" << (submitted > done + 1 ? " (and later steps started)" : "") << std::endl;
    };
    run.run();
    {
      std::lock_guard lock(mutex_);
      control_ = nullptr;
    }
    if (broadcast) broadcast->close();  // after an update in flight; it holds the generators' handles
    caf::anon_send_exit(learner_actor, caf::exit_reason::user_shutdown);
  }
  if (trace) {
    if (Status s = trace->close(); !s.ok()) log << "torl train: " << s.message() << "\n";
  }
  // Read once every actor is gone: a step whose update finished while the run was ending counts.
  return finish(run.state(), {.name = config.run.name, .run_dir = run_dir, .lead = lead, .first_step = first_step,
                              .steps = steps, .started = started},
                write_checkpoint_at, out, log);
}

}  // namespace torl::actors
