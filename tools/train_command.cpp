// torl train: GRPO with tool-integrated rollouts (DESIGN.md §1, §6). The rollout pipeline, a learner
// actor and this thread, which feeds the pipeline one step's groups at a time as far ahead as
// algorithm.max_staleness allows, and waits. Each step appends one line to RUN/metrics.jsonl and
// prints one on stderr; every train.checkpoint_every steps (and at the end) the learner writes a
// checkpoint. --resume continues from the newest checkpoint: the same data order, the metrics
// continued from the checkpoint's step.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <map>
#include <mutex>
#include <sstream>

#include "actors/learner_actor.hpp"
#include "actors/pipeline.hpp"
#include "actors/rollout_bench.hpp"
#include "actors/training_run.hpp"
#include "actors/trace.hpp"
#include "actors/train_data.hpp"
#include "config/load.hpp"
#include "model/checkpoint.hpp"
#include "model/data_parallel.hpp"
#include "model/device.hpp"
#include "model/memory_plan.hpp"
#include "model/qwen2_causal_lm.hpp"
#include "model/train_bench.hpp"
#include "sandbox/code_runner.hpp"
#include "tools/arg_reader.hpp"
#include "tools/commands.hpp"
#include "tools/run_report.hpp"
#include "tools/run_endpoint.hpp"
#include "tools/run_setup.hpp"
#include "tools/stop_signals.hpp"
#include "tools/train_hooks.hpp"
#include "tools/train_metrics.hpp"

namespace torl::tools {
namespace {

using actors::Trajectory;

TrainHooks& hooks() {
  static TrainHooks installed;
  return installed;
}

constexpr std::string_view kUsage =
    "usage: torl train CONFIG [--set KEY=VALUE]... [--resume] [--nproc N]\n"
    "       torl train CONFIG [--set KEY=VALUE]... --plan [--device-memory GIB] [--model-config FILE]\n"
    "       torl train bench [--sequences B] [--length T] [--vocabulary V] [--repeat R]\n"
    "       torl train bench --modelled [--config FILE] [--set ...] [--forward-ms F,T,C] [--learner-ms MS]\n"
    "                        [--steps N] [--repeat R] [--latency-ms LO-HI]\n"
    "\n"
    "--plan prints the memory each learner process (with its generators) will need for this config,\n"
    "item by item, without loading weights (from model.path/config.json, or --model-config FILE, e.g.\n"
    "../shared/fixtures/configs/qwen2.5-math-7b.json), and with --device-memory whether it fits and which\n"
    "settings would make it fit. bench measures one update of a random 4-layer model on B x T tokens\n"
    "(default 8 x 2048, vocabulary 32768) on the CPU with gradient checkpointing and logits chunking off\n"
    "and on: step time and peak resident memory (medians of R runs each, interleaved), beside --plan's\n"
    "estimate for the same settings.\n"
    "bench --modelled measures whether gradient steps overlap rollouts: N-step runs (default 4) whose\n"
    "rollouts go through the real pipeline and sandbox pool (plus a LO-HI ms delay, default 50-500) on a\n"
    "modelled accelerator (each forward sleeps F + T x new tokens + C x cached tokens ms; default\n"
    "4.2,0.013,0, Qwen2.5-1.5B on an H200) and whose updates sleep MS (default: as long as a step's\n"
    "rollouts), at max_staleness 0 and 1, beside rollout + update and max(rollout, update); then\n"
    "backpressure: rollouts alone with tool.max_pending 2 and 8. Medians of R runs (default 3).\n"
    "\n"
    "Trains the model of model.path with GRPO on data.train_files for train.steps steps, with the tool\n"
    "loop of tool.* in every rollout. The run folder is run.output_dir/run.name: metrics.jsonl (one line a\n"
    "step), checkpoints/step-N (HF safetensors with config.json and tokenizer files, optimizer, data\n"
    "position). A run folder that already has checkpoints is only continued with --resume, which starts\n"
    "from the newest checkpoint (or from the base model when there is none yet).\n"
    "\n"
    "Data parallel: --nproc N (or train.nproc) starts N learner processes on this machine, each with its\n"
    "own pipeline and prompts_per_step / N of the groups, gradients summed over NCCL on CUDA (Gloo on\n"
    "the CPU); model.device: cuda puts rank r on cuda:r (its LOCAL_RANK). Across machines, the same\n"
    "command per node under torchrun (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) or Slurm's\n"
    "srun (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, with MASTER_ADDR and MASTER_PORT set). A launched\n"
    "run of one rank meets in a group too. Rank 0 writes the metrics and the checkpoints.\n"
    "\n"
    "Where generation runs: rollout.placement colocated (default) puts each process's generators on its\n"
    "learner's device; rollout.cache_during_update: free then frees their KV cache whenever they are idle\n"
    "(between the steps of an on-policy run), so the update can use that memory. rollout.placement\n"
    "separate puts them on rollout.device (cuda: the GPU after the learners' GPUs, cuda:LOCAL_WORLD_SIZE +\n"
    "LOCAL_RANK; or cuda:N, or cpu beside a cpu learner), and each step's weights are broadcast there\n"
    "over NCCL (Gloo on the CPU); with algorithm.max_staleness >= 1 the update and the next rollouts then\n"
    "run on different devices at once. --plan prints both devices' memory.\n"
    "\n"
    "With train.eval_every > 0, rank 0 also rolls out data.eval_files (eval.* settings) at the start,\n"
    "every eval_every steps and at the end, through the same pipeline; one line each in RUN/eval.jsonl.\n"
    "The run ends with a table of the first and the last eval and RUN/plot.png (reward, accuracy and\n"
    "tool-use rate per step, and the evals); a run that reached train.steps also writes RUN/summary.json\n"
    "(its final numbers, flat; what torl sweep reads).\n"
    "\n"
    "run.metrics_port > 0 serves GET /healthz and GET /metrics (Prometheus text) on 127.0.0.1.\n"
    "trace.enabled records every rollout in RUN/trace (trace-from-step-N after --resume) for torl replay.\n"
    "\n"
    "SIGINT or SIGTERM: no new step starts; in one process the rollouts in flight are dropped (an update\n"
    "already running finishes), with --nproc the steps in flight finish (the ranks stop together); a\n"
    "checkpoint of the last finished step is written and torl exits 0; --resume continues. A second\n"
    "Ctrl-C stops at once (the newest checkpoint is kept); a second SIGTERM is ignored (SIGKILL insists).\n"
    "A step whose rollouts take longer than 30 s prints how many have finished every 30 s.\n";

int usage_error(std::ostream& err, const std::string& message) {
  err << "torl train: " << message << "\n" << kUsage;
  return kExitUsage;
}

constexpr auto kProgressEvery = std::chrono::seconds(30);  // a line on a step that takes longer

int train(const std::string& file, const std::vector<std::string>& sets, bool resume, std::ostream& out,
          std::ostream& err) {
  const auto started = std::chrono::steady_clock::now();
  // SIGINT/SIGTERM from here on: no new step; the rollouts in flight are dropped (ranks of --nproc
  // finish their steps in flight together), a checkpoint is written, exit 0. One during start-up stops
  // the run before its first step.
  std::mutex signal_mutex;
  int early_signal = 0;                       // guarded by signal_mutex: received before the run began
  actors::TrainingRun* control = nullptr;     // guarded by signal_mutex: the run, once it exists
  const StopSignals signals([&](int signal) {
    std::lock_guard lock(signal_mutex);
    early_signal = signal;
    if (control) control->request_stop(signal);
  });
  auto loaded = load_run_config(file, sets);
  if (!loaded) return err << "torl train: " << loaded.status().message() << "\n", kExitUsage;
  const config::Config& config = *loaded;
  if (config.run.deterministic) model::make_deterministic();
  auto place = model::rank_placement([](const char* name) { return std::getenv(name); });
  if (!place) return err << "torl train: " << place.status().message() << "\n", kExitUsage;
  const model::RankPlacement rank = *place;
  const bool lead = rank.rank == 0;  // writes metrics and checkpoints
  if (config.rollout.prompts_per_step % rank.world != 0) {
    return err << "torl train: rollout.prompts_per_step (" << config.rollout.prompts_per_step
               << ") must be a multiple of the number of learner processes (" << rank.world << ")\n",
           kExitUsage;
  }
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
  auto device = model::rank_device(config.model.device, rank, static_cast<int>(torch::cuda::device_count()));
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
  if (resume) {
    const int64_t from = checkpoint ? checkpoint->step : -1;
    if (checkpoint) err << "torl train: --resume: from " << checkpoint->dir.string() << " (step " << from << ")\n";
    auto aside = model::set_aside_incomplete_checkpoints(run_dir, from);
    if (!aside) return err << "torl train: --resume: " << aside.status().message() << "\n", kExitFailed;
    for (const auto& moved : *aside) {
      err << "torl train: --resume: a newer step folder had no state.json (its write never finished); kept as "
          << moved.string() << "\n";
    }
  }
  const std::filesystem::path weights_dir = checkpoint ? checkpoint->dir : std::filesystem::path(config.model.path);
  auto policy = model::Qwen2Model::load(weights_dir, *device, dtype);
  if (!policy) return err << "torl train: " << policy.status().message() << "\n", kExitFailed;
  policy->set_gradient_checkpointing(config.model.gradient_checkpointing);
  // the generators' device: the learner's (colocated), or their own (separate)
  auto generator_device = config.rollout.placement == config::Placement::kSeparate
                              ? model::generator_device(config.rollout.device, rank, static_cast<int>(torch::cuda::device_count()))
                              : device;
  if (!generator_device) return err << "torl train: rollout.device: " << generator_device.status().message() << "\n", kExitUsage;
  auto sampler = model::Qwen2Model::load(weights_dir, *generator_device, dtype);  // the generators' copy
  if (!sampler) return err << "torl train: " << sampler.status().message() << "\n", kExitFailed;
  std::optional<model::Qwen2Model> reference;
  if (config.algorithm.kl_coef > 0) {
    auto frozen = model::Qwen2Model::load(config.model.path, *device, dtype);
    if (!frozen) return err << "torl train: reference model: " << frozen.status().message() << "\n", kExitFailed;
    reference = std::move(*frozen);
  }
  model::PolicyTrainerOptions options{config.train, config.algorithm,
                                      config.rollout.temperature > 0 ? config.rollout.temperature : 1.0};
  if (rank.launched) {  // also a launch of one rank: the code path of N (NCCL on CUDA, else Gloo)
    auto group = model::make_rank_group(rank, *device);
    if (!group) return err << "torl train: " << group.status().message() << "\n", kExitFailed;
    options.sync = *group;
  }
  auto trainer = model::PolicyTrainer::create(*policy, options, reference ? &*reference : nullptr);
  if (!trainer) return err << "torl train: " << trainer.status().message() << "\n", kExitUsage;
  const int64_t first_step = checkpoint ? checkpoint->step : 0;
  if (first_step > config.train.steps) {
    return err << "torl train: --resume: the checkpoint is at step " << first_step << ", past train.steps ("
               << config.train.steps << "); raise train.steps to train on\n",
           kExitUsage;
  }
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
  std::ofstream metrics_out;
  if (lead) {
    if (Status s = keep_metrics_until(metrics_file, first_step); !s.ok()) return err << "torl train: " << s.message() << "\n", kExitFailed;
    metrics_out.open(metrics_file, std::ios::app);
    if (!metrics_out) return err << "torl train: cannot write '" << metrics_file.string() << "'\n", kExitFailed;
    std::filesystem::remove(run_dir / "summary.json", made);  // written again when this run finishes
  }

  // ---- the pipeline over the sampler's copy, and the learner over the policy ----
  auto runner = sandbox::start_code_runner(config.tool);
  if (!runner) return err << "torl train: starting the sandbox: " << runner.status().message() << "\n", kExitFailed;
  auto created = actors::create_generator_model(*sampler, config);
  if (!created) return err << "torl train: " << created.status().message() << "\n", kExitUsage;
  std::unique_ptr<model::CausalLm> wrapped_lm;
  if (hooks().wrap_generator_model) wrapped_lm = hooks().wrap_generator_model(**created);
  actors::PipelineMetrics pipeline_metrics(1);
  actors::PipelineSetup setup;
  setup.rollout = config.rollout;
  setup.tool = config.tool;
  setup.reward = config.reward;
  setup.tokenizer = &*tokenizer;
  setup.models = {wrapped_lm ? wrapped_lm.get() : static_cast<model::CausalLm*>(created->get())};
  setup.weights = {&*sampler};
  if (policy->config().eos_token_id >= 0) setup.eos_ids = {policy->config().eos_token_id};
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
    if (!opened) return err << "torl train: " << opened.status().message() << "\n", kExitFailed;
    trace = std::move(*opened);
    setup.trace = trace.get();
  }
  std::unique_ptr<RunEndpoint> endpoint;  // run.metrics_port: /healthz and /metrics
  if (lead && config.run.metrics_port > 0) {
    auto started = RunEndpoint::start(config.run.metrics_port, first_step, config.train.steps, pipeline_metrics, **runner);
    if (!started) return err << "torl train: " << started.status().message() << "\n", kExitFailed;
    endpoint = std::move(*started);
    err << "torl train: serving http://" << endpoint->address() << "/healthz and /metrics\n";
  }

  const int64_t steps = config.train.steps;
  // ---- evals (train.eval_every): rank 0 rolls the eval sets out through the same pipeline, at the
  // start, every eval_every steps and at the end; one line per eval in RUN/eval.jsonl ----
  const bool evaluating = lead && config.train.eval_every > 0 && !config.data.eval_files.empty();
  std::vector<DatasetRow> eval_rows;
  std::vector<actors::RolloutJob> eval_template;
  std::ofstream eval_out;
  if (evaluating) {
    auto listed = eval_jobs(config, *tokenizer, 0, eval_rows);
    if (!listed) return err << "torl train: " << listed.status().message() << "\n", kExitUsage;
    eval_template = std::move(*listed);
    const std::filesystem::path eval_file = run_dir / "eval.jsonl";
    if (Status s = keep_metrics_until(eval_file, first_step); !s.ok()) return err << "torl train: " << s.message() << "\n", kExitFailed;
    eval_out.open(eval_file, std::ios::app);
  }

  // The run's control (actors/training_run.hpp): what goes into the pipeline when, and when it ends.
  // Its actions are set below, once the pipeline exists.
  actors::FunctionActions actions;
  actors::TrainingRun run(
      {.first_step = first_step,
       .steps = steps,
       .max_staleness = config.algorithm.max_staleness,
       .eval_every = evaluating && !eval_template.empty() ? config.train.eval_every : 0,
       .launched = rank.launched,
       .quiet = std::chrono::duration_cast<std::chrono::milliseconds>(kProgressEvery)},
      actions);
  {
    std::lock_guard lock(signal_mutex);
    control = &run;
    if (early_signal != 0) run.request_stop(early_signal);
  }
  const auto write_checkpoint_at = [&](int64_t step) {
    model::CheckpointContents contents;
    contents.step = step;
    contents.model = &*policy;
    contents.model_source = config.model.path;
    contents.optimizer = trainer->optimizer_state();
    contents.state = {{"seed", config.run.seed}, {"next_step", step}, {"config_file", file}};
    Status written = model::write_checkpoint(run_dir, contents, config.train.keep_checkpoints);
    if (written.ok()) err << "torl train: checkpoint step " << step << " written\n";
    return written;
  };

  actors::LearnerSetup learner;
  learner.trainer = &*trainer;
  learner.policy = &*policy;
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
    const auto sums = batch_sums(report, options.sync.get(), asked);  // every rank takes part
    const bool stop = sums.stop_requests > 0;
    const bool due = lead && (report.step == steps || stop ||
                              (config.train.checkpoint_every > 0 && report.step % config.train.checkpoint_every == 0));
    if (lead) {
      const Json line = step_line(report, sums, data->problems_of_step(report.step - 1), pipeline_metrics.snapshot());
      metrics_out << line.dump() << '\n' << std::flush;
      err << step_text(line, steps) << std::endl;
      if (endpoint) endpoint->on_step(line);
    }
    if (due) written = write_checkpoint_at(report.step);
    if (hooks().after_step) {
      hooks().after_step(report.step, [&](std::chrono::seconds limit) { run.wait_for_stop(limit); });
    }
    if (!written.ok()) {
      if (endpoint) endpoint->failed(written.message());
      run.fail(written);  // a checkpoint that could not be written ends the run
    }
    run.step_done(report.step, due && written.ok(), stop);
  };

  constexpr int64_t kEvalIds = int64_t{1} << 50;  // eval job ids: kEvalIds + step * jobs + i
  const int64_t eval_size = static_cast<int64_t>(eval_template.size());
  std::mutex eval_mutex;
  std::map<int64_t, std::pair<std::vector<DatasetRow>, int64_t>> evals;  // guarded: unfinished evals, step -> rows, finished
  const auto eval_finished = [&](const Trajectory& t) {
    const int64_t step = (t.id() - kEvalIds) / eval_size;
    std::unique_lock lock(eval_mutex);
    auto& [rows, finished] = evals.at(step);  // made when the eval was submitted
    count(rows, t);
    if (++finished < eval_size) return;
    Json line = {{"step", step}, {"datasets", Json::array()}};
    std::ostringstream text;
    text << std::fixed << std::setprecision(3) << "eval at step " << step << ":";
    for (const DatasetRow& row : rows) {
      line["datasets"].push_back(to_json(row));
      const Json j = to_json(row);
      text << "  " << row.name << " acc " << j["accuracy"].get<double>() << " tool use " << j["tool_use_rate"].get<double>();
    }
    eval_out << line.dump() << '\n' << std::flush;
    err << text.str() << std::endl;
    evals.erase(step);
    lock.unlock();
    run.eval_done(step);
  };

  if (lead) err << "torl train: " << config.run.name << ": steps " << first_step << " -> " << steps << ", "
      << config.rollout.prompts_per_step << " prompts x " << config.rollout.samples_per_prompt << " samples a step, "
      << data->problems().size() << " problems, C = " << config.tool.max_calls << ", max_staleness "
      << config.algorithm.max_staleness << (rank.world > 1 ? ", " + std::to_string(rank.world) + " learner processes" : "")
      << (config.rollout.placement == config::Placement::kSeparate ? ", generators on " + generator_device->str() : "")
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
      if (t.id() >= kEvalIds) return eval_finished(t);
      ++rollouts_finished;
      caf::anon_send(learner_actor, actors::finished_atom::value, std::move(t));
    });
    learner.generators = pipeline.generators();
    if (config.rollout.placement == config::Placement::kSeparate) {  // new weights reach the generators' device over c10d
      auto broadcast = model::WeightBroadcast::start(
          sampler->named_parameters(), *device, *generator_device,
          [generators = pipeline.generators()](int32_t version, std::shared_ptr<const model::TensorMap> weights) {
            for (const auto& generator : generators) {
              caf::anon_send(generator, actors::weights_atom::value, actors::WeightsUpdate{version, weights});
            }
          });
      if (!broadcast) return err << "torl train: rollout.placement: " << broadcast.status().message() << "\n", kExitFailed;
      learner.broadcast = *broadcast;
    }
    const std::shared_ptr<model::WeightBroadcast> broadcast = learner.broadcast;
    // moved: a handle left here would keep the generators alive and the system from shutting down
    learner_actor = actors::spawn_reporting(system, true, "learner", setup.on_fault, actors::learner_actor, std::move(learner));

    actions.step = [&](int64_t step) { pipeline.submit(data->jobs_of_step(step, rank.rank, rank.world)); };
    actions.eval = [&](int64_t step) {
      std::vector<actors::RolloutJob> jobs = eval_template;
      for (size_t i = 0; i < jobs.size(); ++i) jobs[i].id = kEvalIds + step * eval_size + static_cast<int64_t>(i);
      {
        std::lock_guard lock(eval_mutex);
        evals[step] = {eval_rows, 0};
      }
      pipeline.submit(std::move(jobs));
    };
    actions.stop = [&] {
      if (endpoint) endpoint->stopping();
    };
    actions.quiet = [&](int64_t done, int64_t submitted) {  // a long step: how far its rollouts are
      if (!lead) return;
      const int64_t per_step = config.rollout.prompts_per_step / rank.world * config.rollout.samples_per_prompt;
      const int64_t of_done = std::max<int64_t>(0, rollouts_finished - (done - first_step) * per_step);
      err << "torl train: step " << done + 1 << " in flight: " << std::min(of_done, per_step) << " of " << per_step
          << " rollouts finished" << (submitted > done + 1 ? " (and later steps started)" : "") << std::endl;
    };
    run.run();
    {
      std::lock_guard lock(signal_mutex);
      control = nullptr;
    }
    if (broadcast) broadcast->close();  // after an update in flight; it holds the generators' handles
    caf::anon_send_exit(learner_actor, caf::exit_reason::user_shutdown);
  }
  if (trace) {
    if (Status s = trace->close(); !s.ok()) err << "torl train: " << s.message() << "\n";
  }
  // Read once every actor is gone: a step whose update finished while the run was ending counts.
  const actors::RunState ended = run.state();
  const int64_t done = ended.done, checkpointed = ended.checkpointed;
  if (!ended.failure.ok()) {
    err << "torl train: " << ended.failure.message() << "\n";
    if (lead && checkpointed > 0) {
      err << "torl train: the last checkpoint, of step " << checkpointed << ", is in " << (run_dir / "checkpoints").string()
          << "; continue with --resume\n";
    }
    return kExitFailed;
  }
  if (!lead) return kExitOk;
  if (done < steps) {  // stopped by a signal
    if (checkpointed != done) {
      if (Status s = write_checkpoint_at(done); !s.ok()) return err << "torl train: " << s.message() << "\n", kExitFailed;
    }
    const char* signal_name = ended.stop_signal == SIGINT ? "SIGINT" : "SIGTERM";
    if (done == first_step) {
      err << "torl train: stopped by " << signal_name << " before its first step; nothing new to save\n";
      return kExitOk;
    }
    err << "torl train: stopped by " << signal_name << " after step " << done
        << "; the checkpoint of step " << done << " is in " << (run_dir / "checkpoints").string()
        << "; continue with --resume\n";
  }
  out << "torl train: " << config.run.name << ": " << done << " of " << steps << " steps done; metrics in "
      << metrics_file.string() << ", checkpoints in " << (run_dir / "checkpoints").string() << "\n";
  print_before_after(run_dir, out);
  if (done > 0) {
    if (Status s = write_run_plot(run_dir); !s.ok()) return err << "torl train: plot: " << s.message() << "\n", kExitFailed;
    out << "plot: " << (run_dir / "plot.png").string() << "\n";
  }
  if (done == steps) {
    const double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (Status s = write_run_summary(run_dir, steps, wall_s); !s.ok()) return err << "torl train: " << s.message() << "\n", kExitFailed;
  }
  return kExitOk;
}

// --nproc N: runs this same command N times as ranks 0..N-1 of one Gloo group on this machine, and
// waits. When one rank fails the others are stopped (they would wait in a collective until the Gloo
// timeout); the exit code is the first failure's.
int launch_ranks(const Args& args, int nproc, std::ostream& err) {
  const uint16_t port = model::free_loopback_port();
  if (port == 0) return err << "torl train: --nproc: no free port on 127.0.0.1 for the rendezvous\n", kExitFailed;
  std::vector<std::string> argv_text = {"torl", "train"};
  for (const std::string& arg : args) argv_text.push_back(arg);
  std::vector<char*> argv;
  for (std::string& arg : argv_text) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::vector<pid_t> children;
  for (int r = 0; r < nproc; ++r) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::setenv("RANK", std::to_string(r).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      ::setenv("LOCAL_WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      ::setenv("MASTER_ADDR", "127.0.0.1", 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      ::execv("/proc/self/exe", argv.data());
      std::perror("torl train: --nproc: exec");
      ::_exit(kExitFailed);
    }
    if (pid < 0) {
      err << "torl train: --nproc: fork failed\n";
      for (const pid_t child : children) ::kill(child, SIGTERM);
      return kExitFailed;
    }
    children.push_back(pid);
  }
  // SIGTERM to this launcher is passed on to the ranks (which stop together after a step); Ctrl-C's
  // SIGINT reaches them from the terminal directly.
  const StopSignals signals([&](int signal) {
    if (signal != SIGTERM) return;
    for (const pid_t child : children) ::kill(child, SIGTERM);
  });
  int result = kExitOk;
  for (size_t left = children.size(); left > 0; --left) {
    int status = 0;
    const pid_t pid = ::wait(&status);
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (code != 0 && result == kExitOk) {
      result = code;
      err << "torl train: --nproc: rank " << (std::find(children.begin(), children.end(), pid) - children.begin())
          << " ended with " << code << "; stopping the others\n";
      for (const pid_t child : children) {
        if (child != pid) ::kill(child, SIGTERM);
      }
    }
  }
  return result;
}

}  // namespace

int plan(const std::string& file, const std::vector<std::string>& sets, const std::string& model_config,
         double device_gib, std::ostream& out, std::ostream& err) {
  config::LoadOptions load;
  load.overrides = sets;
  load.require_paths = false;  // planning may happen before the weights and data are there
  auto config = config::load_config_or_error(file, load);
  if (!config) return err << "torl train --plan: " << config.status().message() << "\n", kExitUsage;
  const std::filesystem::path json =
      model_config.empty() ? std::filesystem::path(config->model.path) / "config.json" : std::filesystem::path(model_config);
  auto shape = model::Qwen2Config::load(json);
  if (!shape) return err << "torl train --plan: " << shape.status().message() << "\n", kExitUsage;
  model::MemoryPlanInput in;
  in.model = *shape;
  in.dtype = model::scalar_type(config->model.dtype);
  in.master_copy = c10::elementSize(in.dtype) < 4 && config->train.master_dtype == config::DType::kFloat32;
  in.gradient_checkpointing = config->model.gradient_checkpointing;
  in.reference = config->algorithm.kl_coef > 0;
  in.length = config->data.max_prompt_tokens + config->rollout.max_response_tokens;
  in.sequences = config->train.micro_batch;
  if (config->train.micro_batch_tokens > 0) {
    in.sequences = std::clamp<int64_t>(config->train.micro_batch_tokens / in.length, 1, in.sequences);
  }
  in.logits_chunk = config->train.logits_chunk;
  in.generators = config->rollout.generators;
  in.cache_slots = actors::generator_slots(config->rollout, config->tool);
  in.cache_length = in.length + 1;
  in.separate = config->rollout.placement == config::Placement::kSeparate;
  in.cache_freed = config->rollout.cache_during_update == config::CacheDuringUpdate::kFree;
  out << "torl train --plan: " << config->run.name << ": " << json.string() << ", " << model::parameter_count(*shape)
      << " parameters in " << c10::toString(in.dtype) << (in.master_copy ? " with float32 masters" : "")
      << "; micro-batch " << in.sequences << " x " << in.length << " tokens; per learner process\n\n"
      << model::format_memory_plan(model::plan_memory(in), in, device_gib);
  if (in.separate) {
    out << "\nthe generators' device (rollout.placement separate, rollout.device " << config->rollout.device << ")\n\n"
        << model::format_memory_plan(model::plan_generator_memory(in), in, device_gib);
  }
  return kExitOk;
}

// torl train bench --modelled: the overlap of gradient steps and rollouts, and backpressure.
int overlap_bench(const Args& args, std::ostream& out, std::ostream& err) {
  std::string file, latency = "50-500", forward_ms, learner_ms;
  std::vector<std::string> sets;
  long steps = 4, repeat = 3;
  ArgReader reader(args);
  while (!reader.done()) {
    if (reader.flag("--modelled")) continue;
    if (reader.value("--config", file) || reader.values("--set", sets) || reader.value("--latency-ms", latency) ||
        reader.value("--forward-ms", forward_ms) || reader.value("--learner-ms", learner_ms) ||
        reader.integer("--steps", steps) || reader.integer("--repeat", repeat)) {
      continue;
    }
    reader.fail("unexpected argument '" + reader.peek() + "'");
  }
  if (!reader.error().empty()) return usage_error(err, reader.error());
  auto flags = read_bench_flags(file, sets, latency, forward_ms);
  if (!flags) return usage_error(err, flags.status().message());
  actors::OverlapBenchOptions options;
  options.config = flags->config;
  options.low_ms = flags->low_ms, options.high_ms = flags->high_ms;
  options.forward = flags->forward;
  if (!learner_ms.empty()) {
    char* end = nullptr;
    options.learner_ms = std::strtod(learner_ms.c_str(), &end);
    if (*end != '\0' || !(options.learner_ms >= 0) || !std::isfinite(options.learner_ms)) {
      return usage_error(err, "--learner-ms must be a number of milliseconds >= 0 (got '" + learner_ms + "')");
    }
  }
  if (steps < 3 || steps > 1000 || repeat < 1 || repeat > 100) {  // 3: two steps after the one that fills the pipe
    return usage_error(err, "--steps must be in [3, 1000] and --repeat in [1, 100]");
  }
  options.steps = steps, options.repeats = repeat;
  const config::Config& c = options.config;
  err << "torl train bench: " << steps << "-step runs of " << c.rollout.prompts_per_step << " prompts x "
      << c.rollout.samples_per_prompt << " samples, C = " << c.tool.max_calls << ", max_batch " << c.rollout.max_batch
      << "; a forward = " << options.forward.to_string() << " (sleeping, no CPU); sandbox delay " << options.low_ms
      << "-" << options.high_ms << " ms + the real pool (" << c.tool.workers << " workers)\n";
  const auto result = actors::run_overlap_bench(options, [&](const std::string& line) {
    err << "torl train bench: " << line << "\n";
  });
  if (!result) return err << "torl train bench: " << result.status().message() << "\n", kExitFailed;
  const double sum = result->rollout_s + result->learner_s, most = std::max(result->rollout_s, result->learner_s);
  out << std::fixed << std::setprecision(2) << "rollout " << result->rollout_s << " s a step, update "
      << result->learner_s << " s: sum " << sum << " s, max " << most << " s; medians of " << repeat << " runs\n\n"
      << "| max_staleness | step s | vs sum | vs max | trajectories/s | generator busy |\n"
      << "|---|---|---|---|---|---|\n";
  for (const auto& row : result->overlap) {
    out << "| " << row.max_staleness << " | " << row.step_s << " | " << row.step_s / sum << " | " << row.step_s / most
        << " | " << row.run.trajectories_per_s << " | " << row.run.generator_busy_fraction << " |\n";
  }
  const int64_t per_step = static_cast<int64_t>(c.rollout.prompts_per_step) * c.rollout.samples_per_prompt;
  out << "\nbackpressure, rollouts alone (a decode batch of " << c.rollout.max_batch << " wants up to that many calls):\n\n"
      << "| tool.max_pending | rollout s a step | trajectories/s | tool calls in flight, max | paused, max | "
         "held back, max |\n"
      << "|---|---|---|---|---|---|\n";
  for (const auto& row : result->backpressure) {
    out << "| " << row.max_pending << " | " << row.rollout_s << " | " << static_cast<double>(per_step) / row.rollout_s
        << " | " << row.run.max_tool_calls_in_flight << " | " << row.run.max_paused_per_generator << " | "
        << row.max_held << " |\n";
  }
  return kExitOk;
}

int bench(const Args& args, std::ostream& out, std::ostream& err) {
  if (std::find(args.begin(), args.end(), "--modelled") != args.end()) return overlap_bench(args, out, err);
  model::TrainBenchShape shape;
  long sequences = shape.sequences, length = shape.length, vocabulary = shape.vocabulary, repeat = 1;
  ArgReader reader(args);
  while (!reader.done()) {
    if (reader.integer("--sequences", sequences) || reader.integer("--length", length) ||
        reader.integer("--vocabulary", vocabulary) || reader.integer("--repeat", repeat)) {
      continue;
    }
    reader.fail("unexpected argument '" + reader.peek() + "'");
  }
  if (!reader.error().empty()) return usage_error(err, reader.error());
  if (repeat < 1) return usage_error(err, "--repeat must be >= 1");
  if (sequences < 1 || sequences > 65536 || length <= 64 || length > (1 << 20) || vocabulary < 2 || vocabulary > (1 << 22)) {
    return usage_error(err, "--sequences must be in [1, 65536], --length in (64, 1048576], --vocabulary in [2, 4194304]");
  }
  shape.sequences = sequences, shape.length = length, shape.vocabulary = vocabulary;
  struct Setting {
    bool checkpointing;
    int64_t chunk;
  };
  const std::vector<Setting> settings = {{false, 0}, {true, 0}, {false, 1024}, {true, 1024}};
  std::vector<std::vector<model::TrainBenchRun>> runs(settings.size());
  for (long r = 0; r < repeat; ++r) {  // interleaved, so that a slow spell of the machine hits all alike
    for (size_t i = 0; i < settings.size(); ++i) {
      auto run = model::bench_train_step(shape, settings[i].checkpointing, settings[i].chunk);
      if (!run) {
        return err << "torl train bench: " << run.status().message() << "\n",
               run.status().code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailed;
      }
      err << "torl train bench: checkpointing " << (settings[i].checkpointing ? "on" : "off") << ", logits_chunk "
          << settings[i].chunk << ": " << std::fixed << std::setprecision(1) << run->step_s << " s, peak "
          << static_cast<double>(run->peak_bytes) / (1 << 20) << " MiB\n";
      runs[i].push_back(*run);
    }
  }
  const auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  out << "torl train bench: one update of a random 4-layer d=256 Qwen2 (4/2 heads, vocabulary " << vocabulary << ") on "
      << sequences << " x " << length << " tokens, float32 on the CPU (" << torch::get_num_threads()
      << " threads); medians of " << repeat << " run(s) each\n\n"
      << "| gradient checkpointing | logits_chunk | step s | peak RSS MiB | --plan MiB | plan / measured |\n"
      << "|---|---|---|---|---|---|\n";
  for (size_t i = 0; i < settings.size(); ++i) {
    std::vector<double> seconds, peaks;
    for (const auto& run : runs[i]) seconds.push_back(run.step_s), peaks.push_back(static_cast<double>(run.peak_bytes));
    const double peak = median(peaks), planned = static_cast<double>(runs[i].front().planned_bytes);
    out << "| " << (settings[i].checkpointing ? "on" : "off") << " | " << settings[i].chunk << " | " << std::fixed
        << std::setprecision(1) << median(seconds) << " | " << std::setprecision(0) << peak / (1 << 20) << " | "
        << planned / (1 << 20) << " | " << std::setprecision(2) << planned / peak << " |\n";
  }
  return kExitOk;
}

void set_train_hooks(TrainHooks installed) { hooks() = std::move(installed); }

int train_command(const Args& args, std::ostream& out, std::ostream& err) {
  if (!args.empty() && args[0] == "bench") return bench(Args(args.begin() + 1, args.end()), out, err);
  std::string file, model_config, device_memory;
  bool planning = false;
  std::vector<std::string> sets;
  bool resume = false;
  long nproc = 0;  // 0: train.nproc
  ArgReader reader(args);
  while (!reader.done()) {
    if (reader.flag("--help") || reader.flag("-h")) {
      out << kUsage;
      return kExitOk;
    }
    if (reader.values("--set", sets) || reader.integer("--nproc", nproc)) continue;
    if (reader.value("--model-config", model_config) || reader.value("--device-memory", device_memory)) continue;
    if (reader.flag("--plan")) {
      planning = true;
      continue;
    }
    if (reader.flag("--resume")) {
      resume = true;
      continue;
    }
    if (reader.first_positional(file)) continue;
    reader.fail("unexpected argument '" + reader.peek() + "'");
  }
  if (!reader.error().empty()) return usage_error(err, reader.error());
  if (file.empty()) return usage_error(err, "missing CONFIG");
  if (planning) {
    char* end = nullptr;
    const double gib = device_memory.empty() ? 0.0 : std::strtod(device_memory.c_str(), &end);
    if (!device_memory.empty() && (*end != '\0' || !(gib > 0) || !std::isfinite(gib))) {
      return usage_error(err, "--device-memory must be a size in GiB > 0 (got '" + device_memory + "')");
    }
    return plan(file, sets, model_config, gib, out, err);
  }
  if (!model_config.empty() || !device_memory.empty()) return usage_error(err, "--model-config and --device-memory go with --plan");
  if (nproc < 0 || nproc > 1024) return usage_error(err, "--nproc must be in [1, 1024]");
  const bool launched = std::getenv("WORLD_SIZE") || std::getenv("SLURM_NTASKS");
  if (nproc == 0 && !launched) {
    auto loaded = load_run_config(file, sets);
    if (!loaded) return err << "torl train: " << loaded.status().message() << "\n", kExitUsage;
    nproc = loaded->train.nproc;
  }
  if (nproc > 1 && !launched) {
    Args rest;  // the same command without --nproc, once per rank
    for (size_t i = 0; i < args.size(); ++i) {
      if (args[i] == "--nproc") ++i;
      else if (args[i].rfind("--nproc=", 0) != 0) rest.push_back(args[i]);
    }
    return launch_ranks(rest, static_cast<int>(nproc), err);
  }
  return train(file, sets, resume, out, err);
}

}  // namespace torl::tools
