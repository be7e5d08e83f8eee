#include "actors/rollout_bench.hpp"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <map>
#include <memory>
#include <random>
#include <thread>

#include "actors/dataset.hpp"
#include "actors/pipeline.hpp"
#include "actors/training_run.hpp"
#include "common/asio.hpp"
#include "model/qwen2_causal_lm.hpp"
#include "model/scripted_lm.hpp"
#include "sandbox/code_runner.hpp"

namespace torl::actors {
namespace {

// The real sandbox behind an extra random delay: what a slow cluster or heavy code looks like.
class DelayedRunner : public sandbox::CodeRunner {
 public:
  DelayedRunner(sandbox::CodeRunner& inner, int low_ms, int high_ms)
      : inner_(inner), delay_(low_ms, high_ms), work_(io_.get_executor()), thread_([this] { io_.run(); }) {}
  ~DelayedRunner() override {
    work_.reset();
    io_.stop();
    thread_.join();
  }
  void submit(std::string code, Done done) override {
    boost::asio::post(io_, [this, code = std::move(code), done = std::move(done)]() mutable {
      auto timer = std::make_shared<boost::asio::steady_timer>(io_, std::chrono::milliseconds(delay_(random_)));
      timer->async_wait([this, timer, code = std::move(code), done = std::move(done)](const boost::system::error_code&) mutable {
        inner_.submit(std::move(code), std::move(done));
      });
    });
  }

 private:
  sandbox::CodeRunner& inner_;
  std::mt19937 random_{7};  // used on the io thread only
  std::uniform_int_distribution<int> delay_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;
};

constexpr int64_t kEos = 256;

// The benches' trajectories: each writes four code blocks, then an answer, after 0 to 4 sentences of
// thought, so that lengths vary as in real rollouts (and no two trajectories pause in the same step).
// At C = 0 nothing runs.
struct BenchScripts {
  std::map<std::vector<int64_t>, std::vector<int64_t>> scripts;  // prompt -> the text it writes
  std::vector<std::vector<int32_t>> prompts;
  int64_t longest = 0, longest_prompt = 0, generated = 0;
  int64_t cache_length() const { return longest + 4 * 32 + 8; }  // and the four tool results
};

BenchScripts bench_scripts(const model::Tokenizer& tokenizer, int64_t n) {
  std::string blocks;
  for (int k = 1; k <= 4; ++k) {
    blocks += "Step " + std::to_string(k) + ": compute it.\n```python\nprint(" + std::to_string(k) + " * 7)\n```\n```output";
  }
  blocks += " So the answer is \\boxed{42}.";
  BenchScripts out;
  for (int64_t i = 0; i < n; ++i) {
    std::string thought;
    for (int64_t k = 0; k < i * 3 % 5; ++k) thought += "Let me think step by step. ";
    const auto ids = tokenizer.encode(thought + blocks);
    out.prompts.push_back(tokenizer.encode(format_prompt(config::PromptTemplate::kTorl,
                                                         "What is 6 * 7? (#" + std::to_string(i) + ")")));
    out.scripts[std::vector<int64_t>(out.prompts.back().begin(), out.prompts.back().end())].assign(ids.begin(), ids.end());
    out.longest = std::max(out.longest, static_cast<int64_t>(out.prompts.back().size() + ids.size()));
    out.longest_prompt = std::max(out.longest_prompt, static_cast<int64_t>(out.prompts.back().size()));
    out.generated += static_cast<int64_t>(ids.size());
  }
  return out;
}

}  // namespace

Expected<RolloutBenchResult> run_rollout_bench(const RolloutBenchOptions& options,
                                               const std::function<void(const std::string&)>& progress) {
  if (options.trajectories < 1 || options.batch < 1 || options.repeats < 1 || options.low_ms < 0 ||
      options.high_ms < options.low_ms) {
    return invalid_argument("the bench needs trajectories, batch and repeats >= 1 and 0 <= LO <= HI ms");
  }
  const config::Config& config = options.config;
  const model::Tokenizer tokenizer = model::Tokenizer::byte_level({"<eos>"});
  std::optional<model::Qwen2Model> qwen;
  if (!options.modelled) {
    auto random = model::random_bench_model(torch::kCPU, torch::kFloat32);
    if (!random) return random.status();
    qwen = std::move(*random);
  }
  auto pool = sandbox::start_code_runner(config.tool);
  if (!pool) return pool.status().with_context("starting the sandbox");
  DelayedRunner delayed(**pool, options.low_ms, options.high_ms);

  const BenchScripts bench = bench_scripts(tokenizer, options.trajectories);
  const auto& prompts = bench.prompts;
  const auto& scripts = bench.scripts;
  const int64_t longest_prompt = bench.longest_prompt, generated = bench.generated;
  const int64_t cache_length = bench.cache_length();
  RolloutBenchResult result;
  result.tokens_per_trajectory = generated / options.trajectories;

  struct Run {
    MetricsSnapshot metrics;
    int64_t forwards = 0, rows = 0;
    double late_s = 0;
  };
  // One pipeline run of the first n jobs; counts the right answers. Errors: an actor failed.
  const auto run = [&](config::RolloutMode mode, int calls, int64_t n, int64_t& correct) -> Expected<Run> {
    PipelineSetup setup;
    setup.rollout = config.rollout;
    setup.rollout.mode = mode;
    setup.rollout.max_batch = static_cast<int>(options.batch);
    setup.rollout.max_response_tokens = static_cast<int>(cache_length - longest_prompt - 1);
    setup.tool = config.tool;
    setup.tool.max_calls = calls;
    const int64_t slots = generator_slots(setup.rollout, setup.tool);
    std::unique_ptr<model::CausalLm> inner;
    model::Qwen2CausalLm* real = nullptr;
    model::ModelledLm* modelled = nullptr;
    if (options.modelled) {
      inner = std::make_unique<model::ModelledLm>(slots, cache_length, 4096, *options.modelled);
      modelled = static_cast<model::ModelledLm*>(inner.get());
    } else {
      inner = std::make_unique<model::Qwen2CausalLm>(*qwen, slots, cache_length);
      real = static_cast<model::Qwen2CausalLm*>(inner.get());
    }
    model::ScriptedLm scripted_lm(*inner, scripts, {}, kEos);
    PipelineMetrics metrics(1);
    setup.reward = config.reward;
    setup.tokenizer = &tokenizer;
    setup.models = {&scripted_lm};
    setup.eos_ids = {kEos};
    setup.runner = &delayed;
    setup.metrics = &metrics;
    std::vector<RolloutJob> jobs(static_cast<size_t>(n));
    for (size_t i = 0; i < jobs.size(); ++i) {
      jobs[i].id = static_cast<int64_t>(i);
      jobs[i].prompt = prompts[i];
      jobs[i].gold_answer = "42";
      jobs[i].sampling.temperature = 0;
    }
    correct = 0;
    const auto rolled = run_rollouts(setup, std::move(jobs));
    if (!rolled) return rolled.status();
    for (const auto& t : *rolled) correct += t.score && t.score->outcome == rewards::Outcome::kCorrect;
    Run out;
    out.metrics = metrics.snapshot();
    out.forwards = modelled ? modelled->forwards() : real->forwards();
    out.rows = modelled ? modelled->rows() : real->rows();
    out.late_s = modelled ? modelled->late_s() : 0.0;
    return out;
  };
  int64_t correct = 0;
  // warm-up: allocator, pool
  if (auto warm = run(config::RolloutMode::kAsync, 1, std::min(options.trajectories, options.batch), correct); !warm) {
    return warm.status();
  }

  // Every configuration `repeats` times, interleaved (so that a slow spell of the machine hits all of
  // them alike); each one's median run by trajectories/s is reported.
  const std::vector<config::RolloutMode> modes = {config::RolloutMode::kAsync, config::RolloutMode::kRounds};
  const std::vector<int> all_calls = {0, 1, 4};
  std::map<std::pair<int, int>, std::vector<Run>> runs;
  for (int64_t r = 0; r < options.repeats; ++r) {
    for (const auto mode : modes) {
      for (const int calls : all_calls) {
        auto one = run(mode, calls, options.trajectories, correct);
        if (!one) return one.status();
        runs[{static_cast<int>(mode), calls}].push_back(*one);
        if (correct != options.trajectories) {
          progress("only " + std::to_string(correct) + " of " + std::to_string(options.trajectories) +
                   " answers were right");
        }
      }
    }
    if (options.repeats > 1) progress("round " + std::to_string(r + 1) + " of " + std::to_string(options.repeats) + " done");
  }
  for (const auto mode : modes) {
    double baseline = 0;
    for (const int calls : all_calls) {
      auto& all = runs[{static_cast<int>(mode), calls}];
      std::sort(all.begin(), all.end(),
                [](const Run& a, const Run& b) { return a.metrics.trajectories_per_s < b.metrics.trajectories_per_s; });
      const Run& median = all[all.size() / 2];
      if (calls == 0) baseline = median.metrics.trajectories_per_s;
      RolloutBenchRow row;
      row.mode = mode;
      row.calls = calls;
      row.run = median.metrics;
      row.forwards_per_step = median.metrics.steps ? static_cast<double>(median.forwards) / median.metrics.steps : 0;
      row.rows_per_forward = median.forwards ? static_cast<double>(median.rows) / median.forwards : 0;
      row.late_ms_per_forward = median.forwards ? median.late_s * 1000.0 / median.forwards : 0;
      row.vs_c0 = baseline > 0 ? median.metrics.trajectories_per_s / baseline : 0;
      result.rows.push_back(row);
    }
  }
  return result;
}

Expected<OverlapBenchResult> run_overlap_bench(const OverlapBenchOptions& options,
                                               const std::function<void(const std::string&)>& progress) {
  const config::Config& config = options.config;
  const int64_t per_step = static_cast<int64_t>(config.rollout.prompts_per_step) * config.rollout.samples_per_prompt;
  if (options.steps < 3 || options.repeats < 1 || per_step < 1 || options.low_ms < 0 || options.high_ms < options.low_ms) {
    return invalid_argument("the overlap bench needs steps >= 3, repeats >= 1 and 0 <= LO <= HI ms");
  }
  const model::Tokenizer tokenizer = model::Tokenizer::byte_level({"<eos>"});
  const BenchScripts bench = bench_scripts(tokenizer, config.rollout.prompts_per_step);
  auto pool = sandbox::start_code_runner(config.tool);
  if (!pool) return pool.status().with_context("starting the sandbox");
  DelayedRunner delayed(**pool, options.low_ms, options.high_ms);

  struct Run {
    double step_s = 0, rollout_s = 0;
    MetricsSnapshot metrics;
  };
  // One training run of options.steps steps: the real pipeline over a modelled accelerator, a
  // modelled learner on a thread of its own, both under TrainingRun.
  const auto run_once = [&](int64_t staleness, int max_pending, double learner_ms) -> Expected<Run> {
    PipelineSetup setup;
    setup.rollout = config.rollout;
    setup.rollout.max_response_tokens = static_cast<int>(bench.cache_length() - bench.longest_prompt - 1);
    setup.tool = config.tool;
    setup.tool.max_pending = max_pending;
    setup.reward = config.reward;
    model::ModelledLm modelled(generator_slots(setup.rollout, setup.tool), bench.cache_length(), 4096, options.forward);
    model::ScriptedLm scripted(modelled, bench.scripts, {}, kEos);
    PipelineMetrics metrics(1);
    setup.tokenizer = &tokenizer;
    setup.models = {&scripted};
    setup.eos_ids = {kEos};
    setup.runner = &delayed;
    setup.metrics = &metrics;

    std::mutex mutex;
    std::condition_variable changed;
    std::vector<int64_t> back(static_cast<size_t>(options.steps), 0);  // trajectories back, per step
    std::vector<double> submitted_ms(static_cast<size_t>(options.steps), 0), complete_ms(back.size(), 0);
    std::vector<double> updated_ms(back.size(), 0);  // when each step's update ended (learner thread)
    std::string fault;
    bool over = false;
    const RunClock& clock = metrics.clock();
    setup.on_fault = [&](const std::string& actor, const std::string& what) {
      std::lock_guard lock(mutex);
      if (fault.empty()) fault = "the " + actor + " actor failed: " + what;
      changed.notify_all();
    };

    FunctionActions actions;
    TrainingRun run({.steps = options.steps, .max_staleness = staleness}, actions);
    caf::actor_system_config system_config;
    system_config.set("logger.verbosity", caf::atom("quiet"));
    system_config.set("logger.file-verbosity", caf::atom("quiet"));
    caf::actor_system system(system_config);
    {
      Pipeline pipeline(system, setup, [&](Trajectory t) {
        const auto step = static_cast<size_t>(t.id() / per_step);
        std::lock_guard lock(mutex);
        if (++back[step] == per_step) complete_ms[step] = clock.now_ms();
        changed.notify_all();
      });
      actions.step = [&](int64_t step) {
        std::vector<RolloutJob> jobs(static_cast<size_t>(per_step));
        for (size_t i = 0; i < jobs.size(); ++i) {
          jobs[i].id = step * per_step + static_cast<int64_t>(i);
          jobs[i].prompt = bench.prompts[i / static_cast<size_t>(config.rollout.samples_per_prompt)];
          jobs[i].gold_answer = "42";
          jobs[i].sampling.temperature = 0;
        }
        {
          std::lock_guard lock(mutex);
          submitted_ms[static_cast<size_t>(step)] = clock.now_ms();
        }
        pipeline.submit(std::move(jobs));
      };
      actions.eval = [](int64_t) {};
      // The modelled learner: step k's update once its rollouts are all back and step k - 1's is done.
      std::thread learner([&] {
        for (int64_t step = 0; step < options.steps; ++step) {
          {
            std::unique_lock lock(mutex);
            changed.wait(lock, [&] { return back[static_cast<size_t>(step)] == per_step || !fault.empty() || over; });
            if (!fault.empty() || over) return;
          }
          std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(learner_ms));
          updated_ms[static_cast<size_t>(step)] = clock.now_ms();
          run.step_done(step + 1, false, false);
        }
      });
      std::thread watcher([&] {  // an actor's failure ends the run
        std::unique_lock lock(mutex);
        changed.wait(lock, [&] { return !fault.empty() || over; });
        if (!fault.empty()) run.fail(Status(StatusCode::kInternal, fault));
      });
      const RunState ended = run.run();
      {
        std::lock_guard lock(mutex);
        over = true;
        changed.notify_all();
      }
      learner.join();
      watcher.join();
      if (!ended.failure.ok()) return ended.failure;
    }
    metrics.stop();
    // A step's time as a long run sees it: the median time from one update's end to the next (the
    // first step, which has nothing to overlap with, and the pipeline's start stay out).
    const auto median = [](std::vector<double> values) {
      std::sort(values.begin(), values.end());
      return values[values.size() / 2];
    };
    Run out;
    std::vector<double> between;
    for (size_t k = 1; k < updated_ms.size(); ++k) between.push_back((updated_ms[k] - updated_ms[k - 1]) / 1000.0);
    out.step_s = median(between);
    std::vector<double> rollouts;
    for (size_t k = 0; k < back.size(); ++k) rollouts.push_back((complete_ms[k] - submitted_ms[k]) / 1000.0);
    out.rollout_s = median(rollouts);
    out.metrics = metrics.snapshot();
    return out;
  };
  const auto median_of = [](std::vector<Run>& runs) {
    std::sort(runs.begin(), runs.end(), [](const Run& a, const Run& b) { return a.step_s < b.step_s; });
    return runs[runs.size() / 2];
  };
  const auto row = [](int64_t staleness, int max_pending, const Run& run) {
    OverlapRow r;
    r.max_staleness = staleness;
    r.max_pending = max_pending;
    r.step_s = run.step_s;
    r.rollout_s = run.rollout_s;
    r.run = run.metrics;
    r.max_held = run.metrics.max_held_per_generator;
    return r;
  };

  OverlapBenchResult result;
  // The learner's time: given, or a step's rollout time (measured at staleness 0 with no update).
  double learner_ms = options.learner_ms;
  if (learner_ms < 0) {
    auto probe = run_once(0, config.tool.max_pending, 0.0);
    if (!probe) return probe.status();
    learner_ms = probe->rollout_s * 1000.0;
    progress("a step's rollouts take " + std::to_string(probe->rollout_s) + " s: the modelled update takes as long");
  }
  result.learner_s = learner_ms / 1000.0;
  std::map<std::pair<int64_t, int>, std::vector<Run>> runs;
  for (int64_t r = 0; r < options.repeats; ++r) {
    for (const int64_t staleness : {0, 1}) {
      auto one = run_once(staleness, config.tool.max_pending, learner_ms);
      if (!one) return one.status();
      runs[{staleness, config.tool.max_pending}].push_back(*one);
    }
    for (const int pending : options.max_pending) {  // rollouts alone: no update between steps
      auto one = run_once(0, pending, 0.0);
      if (!one) return one.status();
      runs[{-1, pending}].push_back(*one);
    }
    progress("round " + std::to_string(r + 1) + " of " + std::to_string(options.repeats) + " done");
  }
  const Run at_zero = median_of(runs[{0, config.tool.max_pending}]);
  result.rollout_s = at_zero.rollout_s;
  result.overlap.push_back(row(0, config.tool.max_pending, at_zero));
  result.overlap.push_back(row(1, config.tool.max_pending, median_of(runs[{1, config.tool.max_pending}])));
  for (const int pending : options.max_pending) result.backpressure.push_back(row(0, pending, median_of(runs[{-1, pending}])));
  return result;
}

}  // namespace torl::actors
