// The whole pipeline on real threads with the real sandbox and the tiny-qwen2 fixture model, whose
// output is scripted (ScriptedLm) so that trajectories make 0, 1 and more than C tool calls; the
// loss mask, versions and text are checked token by token.
#include <doctest/doctest.h>

#include "actors/learner_actor.hpp"
#include "actors/pipeline.hpp"
#include "model/device.hpp"
#include "model/qwen2_causal_lm.hpp"
#include "model/scripted_lm.hpp"
#include "sandbox/code_runner.hpp"

namespace torl::actors {
namespace {

const std::filesystem::path kFixture = std::filesystem::path(TORL_SOURCE_DIR) / ".." / "shared" / "fixtures" / "tiny-qwen2";

// One piece of the expected response: text, and whether the policy wrote it (mask 1) or the tool (0).
struct Piece {
  std::string text;
  bool sampled;
};

// The fixture model, made by ScriptedLm to write scripts (prompt ids -> response ids), the real
// sandbox with `tool`, and a pipeline over them.
class ScriptedRig {
 public:
  ScriptedRig(std::map<std::vector<int64_t>, std::vector<int64_t>> scripts, int64_t slots, int64_t cache_length,
              config::ToolConfig tool, int64_t max_response_tokens)
      : lm_(model(), slots, cache_length), scripted_(lm_, std::move(scripts), {}, eos()) {
    auto runner = sandbox::start_code_runner(tool);
    REQUIRE(runner);
    runner_ = std::move(*runner);
    setup_.rollout.max_response_tokens = max_response_tokens;
    setup_.tool = tool;
    setup_.tokenizer = &tokenizer();
    setup_.models = {&scripted_};
    setup_.eos_ids = {eos()};
    setup_.runner = runner_.get();
    setup_.metrics = &metrics_;
  }

  std::vector<Trajectory> run(std::vector<RolloutJob> jobs) {
    auto rolled = run_rollouts(setup_, std::move(jobs));
    REQUIRE_MESSAGE(rolled.ok(), rolled.status().to_string());
    return std::move(*rolled);
  }
  const PipelineMetrics& metrics() const { return metrics_; }

  static const model::Tokenizer& tokenizer() {
    static const model::Tokenizer bytes = model::Tokenizer::byte_level({});  // the fixture's EOS is id 2
    return bytes;
  }
  static int64_t eos() { return model().config().eos_token_id; }
  static std::vector<int64_t> ids(const std::string& text) {
    std::vector<int64_t> out;
    for (const int32_t id : tokenizer().encode(text)) out.push_back(id);
    return out;
  }

 private:
  static model::Qwen2Model& model() {
    REQUIRE_MESSAGE(std::filesystem::exists(kFixture), "shared fixtures missing: " << kFixture);
    static auto loaded = model::Qwen2Model::load(kFixture, torch::kCPU, torch::kFloat32);
    REQUIRE_MESSAGE(loaded.ok(), loaded.status().message());
    return *loaded;
  }

  model::Qwen2CausalLm lm_;
  model::ScriptedLm scripted_;
  std::unique_ptr<sandbox::CodeRunner> runner_;
  PipelineMetrics metrics_{1};
  PipelineSetup setup_;
};

}  // namespace

TEST_SUITE("actors") {
  TEST_CASE("on the fixture model, 0, 1 and more than C calls give the right text and loss mask token by token") {
    const model::Tokenizer& tokenizer = ScriptedRig::tokenizer();
    const int64_t eos = ScriptedRig::eos();
    const std::string eos_text(1, static_cast<char>(eos));

    const std::string block1 = "First.\n```python\nprint(6*7)\n```\n```output";
    const std::string block2 = "Again.\n```python\nprint(sum(range(5)))\n```\n```output";
    const std::string block3 = "Once more.\n```python\nprint(1)\n```\n```output";
    // prompt -> (what the model writes, the response expected with C = 2)
    const std::vector<std::pair<std::string, std::vector<Piece>>> cases = {
        {"zero", {{"No code: \\boxed{2}." + eos_text, true}}},
        {"one", {{block1, true}, {"\n42\n```\n", false}, {"So \\boxed{42}." + eos_text, true}}},
        {"three",
         {{block1, true}, {"\n42\n```\n", false}, {block2, true}, {"\n10\n```\n", false},
          {block3 + " (not run: C = 2) \\boxed{10}." + eos_text, true}}},
    };

    std::map<std::vector<int64_t>, std::vector<int64_t>> scripts;
    std::vector<RolloutJob> jobs;
    for (const auto& [prompt, pieces] : cases) {
      std::string written;
      for (const Piece& piece : pieces) {
        if (piece.sampled) written += piece.text;
      }
      written.pop_back();  // EOS comes from the script's end
      std::vector<int64_t> prompt_ids, written_ids;
      for (const int32_t id : tokenizer.encode(prompt)) prompt_ids.push_back(id);
      for (const int32_t id : tokenizer.encode(written)) written_ids.push_back(id);
      scripts[prompt_ids] = written_ids;
      RolloutJob job;
      job.id = static_cast<int64_t>(jobs.size());
      job.prompt.assign(prompt_ids.begin(), prompt_ids.end());
      job.gold_answer = "10";
      job.sampling.temperature = 0;
      jobs.push_back(std::move(job));
    }

    config::ToolConfig tool;
    tool.max_calls = 2;
    ScriptedRig rig(scripts, 2, 400, tool, 390);  // two slots for three jobs: one waits for a free slot
    const std::vector<Trajectory> results = rig.run(jobs);

    REQUIRE(results.size() == 3);
    for (size_t i = 0; i < results.size(); ++i) {
      const Trajectory& t = results[i];
      const auto& pieces = cases[i].second;
      CAPTURE(cases[i].first);
      std::string text;
      std::vector<uint8_t> mask;
      for (const Piece& piece : pieces) {
        text += piece.text;
        mask.insert(mask.end(), piece.text.size(), piece.sampled ? 1 : 0);  // one byte, one token
      }
      CHECK(t.text == text);
      CHECK(t.loss_mask == mask);
      REQUIRE(t.versions.size() == mask.size());
      REQUIRE(t.logprobs.size() == mask.size());
      for (size_t k = 0; k < mask.size(); ++k) {
        CHECK(t.versions[k] == (mask[k] ? 0 : -1));
        if (!mask[k]) CHECK(t.logprobs[k] == 0.0f);
      }
      CHECK(t.finish == FinishReason::kEos);
      CHECK(t.tool_calls.size() == std::min<size_t>(i == 2 ? 3 : i, 2));
      REQUIRE(t.score.has_value());
    }
    CHECK(results[2].score->outcome == rewards::Outcome::kCorrect);
    CHECK(results[1].score->outcome == rewards::Outcome::kWrong);
    CHECK(rig.metrics().snapshot().tool_calls == 3);
  }

  TEST_CASE("a sandbox worker killed mid-step: every trajectory comes back scored, the failed one is left out of the update") {
    const auto ids = ScriptedRig::ids;
    // One step: 2 prompts x 4 samples. Sample 3 of the first group kills its worker process (as the
    // OOM killer would) while the others' code runs on the other worker and after it.
    const std::string work = "```python\nimport time\ntime.sleep(0.05)\nprint(6*7)\n```\n```output";
    const std::string kill = "```python\nimport os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n```\n```output";
    std::map<std::vector<int64_t>, std::vector<int64_t>> scripts;
    std::vector<RolloutJob> jobs;
    for (int i = 0; i < 8; ++i) {
      const std::string prompt = "p" + std::to_string(i);
      scripts[ids(prompt)] = ids((i == 3 ? kill : work) + " So \\boxed{42}.");
      RolloutJob job;
      job.id = i;
      job.problem = i / 4;
      job.sample = i % 4;
      job.prompt.assign(scripts.find(ids(prompt))->first.begin(), scripts.find(ids(prompt))->first.end());
      job.gold_answer = "42";
      job.sampling.temperature = 0;
      jobs.push_back(std::move(job));
    }
    config::ToolConfig tool;
    tool.workers = 2;
    ScriptedRig rig(scripts, 8, 512, tool, 480);
    std::vector<Trajectory> batch = rig.run(jobs);

    REQUIRE(batch.size() == 8);
    std::sort(batch.begin(), batch.end(), [](const Trajectory& a, const Trajectory& b) { return a.id() < b.id(); });
    for (const Trajectory& t : batch) {
      CAPTURE(t.id());
      REQUIRE(t.tool_calls.size() == 1);
      CHECK(t.finish == FinishReason::kEos);
      REQUIRE(t.score.has_value());
      CHECK(t.score->outcome == rewards::Outcome::kCorrect);  // the model went on after the observation
      if (t.id() == 3) {
        CHECK(t.tool_calls[0].result.status == sandbox::ExecutionStatus::kSandboxError);
        CHECK(t.tool_calls[0].result.stderr_text.find("worker process died") != std::string::npos);
        CHECK(t.text.find("```output\n" + t.tool_calls[0].observation) != std::string::npos);  // the model saw it
        CHECK(t.tool_calls[0].observation == "UnknownError");
      } else {
        CHECK(t.tool_calls[0].result.status == sandbox::ExecutionStatus::kOk);
        CHECK(t.tool_calls[0].observation == "42");
      }
    }
    // the killed call is the infrastructure's failure: its trajectory is left out of its group and counted
    const auto samples = policy_samples(batch, 4, config::AlgorithmConfig{});
    CHECK(samples.infra_failed == 1);
    CHECK(samples.first_infra_failure.find("trajectory 3: sandbox failed call 1") != std::string::npos);
    CHECK(samples.groups_too_small == 0);
    CHECK(samples.samples.size() == 7);

    // The pool replaced the worker: the next step's code runs on both workers again.
    std::vector<RolloutJob> next(jobs.begin() + 4, jobs.end());
    for (RolloutJob& job : next) job.id += 8;
    const std::vector<Trajectory> after = rig.run(next);
    REQUIRE(after.size() == 4);
    for (const Trajectory& t : after) {
      REQUIRE(t.tool_calls.size() == 1);
      CHECK(t.tool_calls[0].result.status == sandbox::ExecutionStatus::kOk);
    }
  }
}

}  // namespace torl::actors
