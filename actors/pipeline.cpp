#include "actors/pipeline.hpp"

#include <algorithm>
#include <condition_variable>
#include <mutex>

#include "actors/driver_actor.hpp"
#include "actors/generator_actor.hpp"
#include "actors/interceptor_actor.hpp"
#include "actors/reward_actor.hpp"
#include "actors/sandbox_actor.hpp"

namespace torl::actors {

int64_t generator_slots(const config::RolloutConfig& rollout, const config::ToolConfig& tool) {
  const bool pauses = rollout.mode == config::RolloutMode::kAsync && tool.max_calls > 0;
  return rollout.max_batch + (pauses ? std::min(tool.max_pending, rollout.max_batch) : 0);
}

Expected<std::unique_ptr<model::Qwen2CausalLm>> create_generator_model(const model::Qwen2Model& model,
                                                                      const config::Config& config) {
  const int64_t slots = generator_slots(config.rollout, config.tool);
  const int64_t length = static_cast<int64_t>(config.data.max_prompt_tokens) + config.rollout.max_response_tokens + 1;
  auto lm = model::Qwen2CausalLm::create(model, slots, length);
  if (lm) return lm;
  return Status(lm.status().code(),
                lm.status().message() + " (set by rollout.max_batch = " + std::to_string(config.rollout.max_batch) +
                    (slots > config.rollout.max_batch ? " plus tool.max_pending for paused sequences" : "") +
                    ", data.max_prompt_tokens = " + std::to_string(config.data.max_prompt_tokens) +
                    " and rollout.max_response_tokens = " + std::to_string(config.rollout.max_response_tokens) + ")");
}

std::chrono::milliseconds sandbox_request_timeout(const config::ToolConfig& tool, int generators) {
  const int parallel = tool.backend == config::ToolBackend::kLocal ? tool.workers : tool.sandbox_fusion.max_concurrency;
  const int64_t ahead = (static_cast<int64_t>(tool.max_pending) * generators + parallel - 1) / parallel;
  return std::chrono::milliseconds((ahead + 1) * tool.timeout_ms + 5000);
}

Pipeline::Pipeline(caf::actor_system& system, const PipelineSetup& setup, std::function<void(Trajectory)> on_finished) {
  const int generators = static_cast<int>(setup.models.size());
  const ToolRules rules = tool_rules(setup.tool, setup.rollout);

  // driver: holds the jobs; sandbox: the code runner; reward: scoring
  // each reports an exception that kills it to setup.on_fault
  const auto& fault = setup.on_fault;
  driver_ = spawn_reporting(system, false, "driver", fault, driver_actor, DriverSetup{std::move(on_finished), setup.trace});
  sandbox_ = spawn_reporting(system, false, "sandbox", fault, sandbox_actor, SandboxSetup{setup.runner, setup.trace});
  reward_ = spawn_reporting(system, setup.detached, "reward", fault, reward_actor,
                            RewardSetup{setup.reward, &setup.metrics->clock(), setup.trace});

  // interceptor: the tool protocol between the generators, the sandbox and the reward
  InterceptorSetup interceptor{rules, setup.tokenizer, sandbox_, reward_, driver_,
                               sandbox_request_timeout(setup.tool, generators), std::chrono::milliseconds(60000),
                               setup.metrics, setup.trace};
  interceptor_ = spawn_reporting(system, false, "interceptor", fault, interceptor_actor, std::move(interceptor));

  // generators: one per model, each asking the driver for work as soon as it exists
  const ToolLoop loop(rules, *setup.tokenizer);
  for (int g = 0; g < generators; ++g) {
    model::Qwen2Model* weights = setup.weights.empty() ? nullptr : setup.weights[static_cast<size_t>(g)];
    GeneratorSetup generator{g, setup.models[static_cast<size_t>(g)], weights, setup.tokenizer, setup.eos_ids,
                             loop.initial_stop_strings(), setup.rollout.mode, setup.rollout.max_batch,
                             setup.tool.max_pending,
                             setup.rollout.max_response_tokens, driver_, interceptor_, setup.metrics, setup.trace,
                             setup.policy_version};
    generator.free_cache_when_idle = setup.rollout.cache_during_update == config::CacheDuringUpdate::kFree;
    generators_.push_back(spawn_reporting(system, setup.detached, "generator-" + std::to_string(g), fault,
                                          generator_actor, std::move(generator)));
  }
}

Pipeline::~Pipeline() {
  for (const auto& generator : generators_) caf::anon_send_exit(generator, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(interceptor_, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(reward_, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(sandbox_, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(driver_, caf::exit_reason::user_shutdown);
}

void Pipeline::submit(std::vector<RolloutJob> jobs) { caf::anon_send(driver_, jobs_atom::value, std::move(jobs)); }

Expected<std::vector<Trajectory>> run_rollouts(const PipelineSetup& given, std::vector<RolloutJob> jobs,
                                               const std::function<void(const Trajectory&)>& progress) {
  caf::actor_system_config config;
  config.set("logger.verbosity", caf::atom("quiet"));
  config.set("logger.file-verbosity", caf::atom("quiet"));
  caf::actor_system system(config);

  std::mutex mutex;
  std::condition_variable all_done;
  std::vector<Trajectory> finished;
  std::string fault;  // the first actor that died, and why
  const size_t expected = jobs.size();
  PipelineSetup setup = given;
  setup.on_fault = [&](const std::string& actor, const std::string& what) {
    if (given.on_fault) given.on_fault(actor, what);
    std::lock_guard lock(mutex);
    if (fault.empty()) fault = "the " + actor + " actor failed: " + what;
    all_done.notify_all();
  };
  {
    Pipeline pipeline(system, setup, [&](Trajectory trajectory) {
      if (progress) progress(trajectory);
      std::lock_guard lock(mutex);
      finished.push_back(std::move(trajectory));
      if (finished.size() == expected) all_done.notify_all();
    });
    pipeline.submit(std::move(jobs));
    std::unique_lock lock(mutex);
    all_done.wait(lock, [&] { return finished.size() == expected || !fault.empty(); });
  }
  setup.metrics->stop();
  if (!fault.empty()) return Status(StatusCode::kInternal, fault);
  std::sort(finished.begin(), finished.end(), [](const Trajectory& a, const Trajectory& b) { return a.id() < b.id(); });
  return finished;
}

}  // namespace torl::actors
