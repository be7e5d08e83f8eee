// The whole pipeline on real threads with the real sandbox and the tiny-qwen2 fixture model, whose
// output is scripted (ScriptedLm) so that trajectories make 0, 1 and more than C tool calls; the
// loss mask, versions and text are checked token by token.
#include <doctest/doctest.h>

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

TEST_SUITE("actors") {
  TEST_CASE("on the fixture model, 0, 1 and more than C calls give the right text and loss mask token by token") {
    REQUIRE_MESSAGE(std::filesystem::exists(kFixture), "shared fixtures missing: " << kFixture);
    auto qwen = model::Qwen2Model::load(kFixture, torch::kCPU, torch::kFloat32);
    REQUIRE(qwen);
    const model::Tokenizer tokenizer = model::Tokenizer::byte_level({});  // the fixture's EOS is id 2
    const int64_t eos = qwen->config().eos_token_id;
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

    model::Qwen2CausalLm lm(*qwen, 2, 400);  // two slots for three jobs: one waits for a free slot
    model::ScriptedLm scripted(lm, scripts, {}, eos);
    config::ToolConfig tool;
    tool.max_calls = 2;
    auto runner = sandbox::start_code_runner(tool);
    REQUIRE(runner);
    PipelineMetrics metrics(1);
    PipelineSetup setup;
    setup.rollout.max_response_tokens = 390;
    setup.tool = tool;
    setup.tokenizer = &tokenizer;
    setup.models = {&scripted};
    setup.eos_ids = {eos};
    setup.runner = runner->get();
    setup.metrics = &metrics;
    const std::vector<Trajectory> results = run_rollouts(setup, jobs);

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
    CHECK(metrics.snapshot().tool_calls == 3);
  }
}

}  // namespace
}  // namespace torl::actors
