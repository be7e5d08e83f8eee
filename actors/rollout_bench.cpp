#include "actors/rollout_bench.hpp"

#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <thread>

#include "actors/dataset.hpp"
#include "actors/pipeline.hpp"
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

  // Every trajectory writes four code blocks, then an answer, after 0 to 4 sentences of thought, so
  // that lengths vary as in real rollouts (and no two trajectories pause in the same step). At C = 0
  // nothing runs.
  std::string blocks;
  for (int k = 1; k <= 4; ++k) {
    blocks += "Step " + std::to_string(k) + ": compute it.\n```python\nprint(" + std::to_string(k) + " * 7)\n```\n```output";
  }
  blocks += " So the answer is \\boxed{42}.";
  std::map<std::vector<int64_t>, std::vector<int64_t>> scripts;
  std::vector<std::vector<int32_t>> prompts;
  int64_t longest = 0, longest_prompt = 0, generated = 0;
  for (int64_t i = 0; i < options.trajectories; ++i) {
    std::string thought;
    for (int64_t k = 0; k < i * 3 % 5; ++k) thought += "Let me think step by step. ";
    const auto ids = tokenizer.encode(thought + blocks);
    prompts.push_back(tokenizer.encode(format_prompt(config::PromptTemplate::kTorl,
                                                     "What is 6 * 7? (#" + std::to_string(i) + ")")));
    scripts[std::vector<int64_t>(prompts.back().begin(), prompts.back().end())].assign(ids.begin(), ids.end());
    longest = std::max(longest, static_cast<int64_t>(prompts.back().size() + ids.size()));
    longest_prompt = std::max(longest_prompt, static_cast<int64_t>(prompts.back().size()));
    generated += static_cast<int64_t>(ids.size());
  }
  const int64_t cache_length = longest + 4 * 32 + 8;  // and the four tool results
  RolloutBenchResult result;
  result.tokens_per_trajectory = generated / options.trajectories;

  struct Run {
    MetricsSnapshot metrics;
    int64_t forwards = 0, rows = 0;
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
      row.vs_c0 = baseline > 0 ? median.metrics.trajectories_per_s / baseline : 0;
      result.rows.push_back(row);
    }
  }
  return result;
}

}  // namespace torl::actors
