// torl train: the command line of a training run (actors/training_job.hpp runs it): the arguments,
// signals as a request to stop, --nproc's ranks as child processes, --plan's table and the benches.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <iomanip>

#include "actors/rollout_bench.hpp"
#include "config/load.hpp"
#include "model/data_parallel.hpp"
#include "model/memory_plan.hpp"
#include "model/train_bench.hpp"
#include "actors/run_setup.hpp"
#include "actors/training_job.hpp"
#include "tools/arg_reader.hpp"
#include "tools/bench_flags.hpp"
#include "tools/commands.hpp"
#include "tools/stop_signals.hpp"
#include "tools/train_hooks.hpp"

namespace torl::tools {
namespace {

using actors::Trajectory;

actors::TrainingHooks& hooks() {
  static actors::TrainingHooks installed;
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

int train(const std::string& file, const std::vector<std::string>& sets, bool resume, std::ostream& out,
          std::ostream& err) {
  // SIGINT/SIGTERM from here on: no new step; the rollouts in flight are dropped (ranks of --nproc
  // finish their steps in flight together), a checkpoint is written, exit 0. One during start-up stops
  // the run before its first step.
  actors::TrainingJob job;
  const StopSignals signals([&](int signal) { job.request_stop(signal); });
  auto loaded = actors::load_run_config(file, sets);
  if (!loaded) return err << "torl train: " << loaded.status().message() << "\n", kExitUsage;
  auto place = model::rank_placement([](const char* name) { return std::getenv(name); });
  if (!place) return err << "torl train: " << place.status().message() << "\n", kExitUsage;
  switch (job.run({.config = *loaded, .config_file = file, .resume = resume, .rank = *place, .hooks = hooks()}, out, err)) {
    case actors::JobOutcome::kDone: return kExitOk;
    case actors::JobOutcome::kBadInput: return kExitUsage;
    case actors::JobOutcome::kFailed: break;
  }
  return kExitFailed;
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
  const model::MemoryPlanInput in = actors::memory_plan_input(*config, *shape);
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

void set_train_hooks(actors::TrainingHooks installed) { hooks() = std::move(installed); }

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
    auto loaded = actors::load_run_config(file, sets);
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
