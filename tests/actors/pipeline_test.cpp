// The pipeline's actors under CAF's deterministic scheduler: a scripted model, a sandbox whose
// answers the test hands out one by one, and the trace to check what was sent in which order.
#include <algorithm>

#include <doctest/doctest.h>

#include "tests/caf_testing.hpp"

#include "actors/pipeline.hpp"
#include "common/log.hpp"
#include "model/scripted_lm.hpp"
#include "tests/temp_dir.hpp"

namespace torl::actors {
namespace {

constexpr int64_t kVocab = 300;
constexpr int64_t kEos = 256;  // "<eos>" in the byte-level tokenizer below

const model::Tokenizer& bytes() {
  static const model::Tokenizer tokenizer = model::Tokenizer::byte_level({"<eos>"});
  return tokenizer;
}

std::vector<int64_t> ids(std::string_view text) {
  const auto encoded = bytes().encode(text);
  return {encoded.begin(), encoded.end()};
}

// The model under the script: right shapes, no compute; it keeps what each slot's cache holds.
class ZeroLm : public model::CausalLm {
 public:
  ZeroLm(int64_t slots, int64_t length) : slots_(slots), length_(length), cache(static_cast<size_t>(slots)) {}
  int64_t max_slots() const override { return slots_; }
  int64_t max_length() const override { return length_; }
  torch::Tensor extend(const std::vector<int64_t>& slots, const std::vector<std::vector<int64_t>>& tokens) override {
    widest = std::max(widest, static_cast<int64_t>(slots.size()));
    for (size_t i = 0; i < slots.size(); ++i) {
      auto& held = cache[static_cast<size_t>(slots[i])];
      held.insert(held.end(), tokens[i].begin(), tokens[i].end());
    }
    return torch::zeros({static_cast<int64_t>(slots.size()), kVocab});
  }
  void clear(int64_t slot) override {
    if (!cache[static_cast<size_t>(slot)].empty()) released.push_back(cache[static_cast<size_t>(slot)]);
    cache[static_cast<size_t>(slot)].clear();
  }
  void truncate(int64_t slot, int64_t length) override { cache[static_cast<size_t>(slot)].resize(static_cast<size_t>(length)); }

  int64_t widest = 0;  // the most rows one extend() had
  std::vector<std::vector<int64_t>> cache;     // by slot
  std::vector<std::vector<int64_t>> released;  // what each cleared slot held, in order

 private:
  int64_t slots_, length_;
};

// A sandbox that answers only when the test says so.
class HeldRunner : public sandbox::CodeRunner {
 public:
  void submit(std::string code, Done done) override { waiting.emplace_back(std::move(code), std::move(done)); }
  void answer_first(sandbox::ExecutionResult result) {
    auto [code, done] = std::move(waiting.front());
    waiting.erase(waiting.begin());
    done(std::move(result));
  }
  std::vector<std::pair<std::string, Done>> waiting;
};

sandbox::ExecutionResult printed(std::string out) {
  sandbox::ExecutionResult r;
  r.status = sandbox::ExecutionStatus::kOk;
  r.exit_code = 0;
  r.stdout_text = std::move(out);
  return r;
}

// What the scripted model writes, and the text of the whole trajectory once "42" is printed.
const std::string kModelWrites = "Let me compute.\n```python\nprint(6*7)\n```\n```outputSo \\boxed{42}.";
const std::string kOneCall = "Let me compute.\n```python\nprint(6*7)\n```\n```output\n42\n```\nSo \\boxed{42}.<eos>";

struct Rig {
  explicit Rig(config::RolloutMode mode = config::RolloutMode::kAsync, int slots = 4, int max_pending = 64,
               std::map<std::vector<int64_t>, std::vector<int64_t>> scripts = {}, int max_batch = 64)
      : zero(slots, 512), model(zero, std::move(scripts), ids(kModelWrites), kEos), metrics(1) {
    auto opened = TraceRecorder::open(dir.path(), config::Config{}, metrics.clock());
    REQUIRE(opened);
    trace = std::move(*opened);
    PipelineSetup setup;
    setup.rollout.mode = mode;
    setup.rollout.max_response_tokens = 300;
    setup.rollout.max_batch = max_batch;
    setup.tool.max_calls = 2;
    setup.tool.max_pending = max_pending;
    setup.tokenizer = &bytes();
    setup.models = {&model};
    setup.eos_ids = {kEos};
    setup.runner = &runner;
    setup.metrics = &metrics;
    setup.trace = trace.get();
    setup.detached = false;
    pipeline = std::make_unique<Pipeline>(*system, setup, [this](Trajectory t) { finished.push_back(std::move(t)); });
  }
  ~Rig() {
    pipeline.reset();
    sched->run();
  }

  void submit(int n) { submit(std::vector<std::string>(static_cast<size_t>(n), "What is 6*7?")); }
  void submit(const std::vector<std::string>& prompts) {
    std::vector<RolloutJob> jobs;
    for (const std::string& prompt : prompts) {
      RolloutJob job;
      job.id = next_id++;
      for (const int64_t id : ids(prompt)) job.prompt.push_back(static_cast<int32_t>(id));
      job.gold_answer = "42";
      job.sampling.temperature = 0;
      jobs.push_back(std::move(job));
    }
    pipeline->submit(std::move(jobs));
    sched->run();
  }

  // The message types of one trajectory, in the order they were sent.
  std::vector<std::string> messages_of(int64_t id) {
    REQUIRE(trace->close().ok());
    auto lines = read_jsonl(dir.path() / "messages.jsonl");
    REQUIRE(lines);
    std::vector<std::string> types;
    for (const Json& line : *lines) {
      if (line["trajectory"] == id) types.push_back(line["type"]);
    }
    return types;
  }

  testing::TempDir dir;
  ZeroLm zero;
  model::ScriptedLm model;
  HeldRunner runner;
  PipelineMetrics metrics;
  std::unique_ptr<TraceRecorder> trace;
  testing::DeterministicActors deterministic;
  std::unique_ptr<caf::actor_system>& system = deterministic.system;
  caf::scheduler::test_coordinator*& sched = deterministic.sched;
  std::unique_ptr<Pipeline> pipeline;
  std::vector<Trajectory> finished;
  int64_t next_id = 0;
};

TEST_SUITE("actors") {
  TEST_CASE("one tool call goes generator -> interceptor -> sandbox -> generator -> reward -> driver") {
    Rig rig;
    rig.submit(1);
    REQUIRE(rig.runner.waiting.size() == 1);
    CHECK(rig.runner.waiting[0].first == "print(6*7)\n");
    CHECK(rig.finished.empty());
    rig.runner.answer_first(printed("42\n"));
    rig.sched->run();
    REQUIRE(rig.finished.size() == 1);
    const Trajectory& t = rig.finished[0];
    CHECK(t.text == kOneCall);
    CHECK(t.finish == FinishReason::kEos);
    REQUIRE(t.score.has_value());
    CHECK(t.score->reward == 1.0);
    CHECK(rig.messages_of(0) ==
          std::vector<std::string>{"begin", "segment", "exec", "resume", "segment", "release", "score", "finished"});
  }

  TEST_CASE("a void call's \"```output\" leaves the model's cache too: it continued from exactly the trajectory") {
    const std::string writes = "Hmm.\n```output```python\nprint(6*7)\n```\n```outputSo \\boxed{42}.";
    Rig rig(config::RolloutMode::kAsync, 4, 64, {{ids("Void?"), ids(writes)}});
    rig.submit({"Void?"});
    REQUIRE(rig.runner.waiting.size() == 1);
    CHECK(rig.runner.waiting[0].first == "print(6*7)\n");
    rig.runner.answer_first(printed("42\n"));
    rig.sched->run();
    REQUIRE(rig.finished.size() == 1);
    const Trajectory& t = rig.finished[0];
    CHECK(t.text == "Hmm.\n```python\nprint(6*7)\n```\n```output\n42\n```\nSo \\boxed{42}.<eos>");
    CHECK(t.void_calls == 1);
    REQUIRE(t.cuts.size() == 1);
    // the slot held the prompt and every response token but the last (EOS, sampled and never fed)
    REQUIRE(rig.zero.released.size() == 1);
    std::vector<int64_t> context(t.job.prompt.begin(), t.job.prompt.end());
    context.insert(context.end(), t.response.begin(), t.response.end() - 1);
    CHECK(rig.zero.released[0] == context);
  }

  TEST_CASE("no more than tool.max_pending calls are ever in flight, and nothing is dropped") {
    Rig rig(config::RolloutMode::kAsync, /*slots=*/4, /*max_pending=*/2);
    rig.submit(7);
    size_t most = 0;
    int answered = 0;
    while (!rig.runner.waiting.empty()) {
      most = std::max(most, rig.runner.waiting.size());
      rig.runner.answer_first(printed("42\n"));
      ++answered;
      rig.sched->run();
    }
    CHECK(most == 2);
    CHECK(answered == 7);
    CHECK(rig.metrics.snapshot().max_paused_per_generator <= 2);
    REQUIRE(rig.finished.size() == 7);
    for (const Trajectory& t : rig.finished) CHECK(t.text == kOneCall);
  }

  TEST_CASE("a sequence paused at a tool call keeps its cache rows while a new prompt takes its place") {
    // 4 slots, a decode batch of 2: the first two pause at their call, the next two start decoding
    Rig rig(config::RolloutMode::kAsync, /*slots=*/4, /*max_pending=*/64, {}, /*max_batch=*/2);
    rig.submit(4);
    CHECK(rig.runner.waiting.size() == 4);
    CHECK(rig.zero.widest == 2);
    while (!rig.runner.waiting.empty()) {
      rig.runner.answer_first(printed("42\n"));
      rig.sched->run();
    }
    REQUIRE(rig.finished.size() == 4);
    for (const Trajectory& t : rig.finished) CHECK(t.text == kOneCall);

    // without spare slots the paused ones hold the batch: only two calls at a time
    Rig full(config::RolloutMode::kAsync, /*slots=*/2, /*max_pending=*/64, {}, /*max_batch=*/2);
    full.submit(4);
    CHECK(full.runner.waiting.size() == 2);
  }

  TEST_CASE("generator_slots: spare rows for paused sequences only in async mode with tool calls") {
    config::RolloutConfig rollout;
    config::ToolConfig tool;
    rollout.max_batch = 16;
    tool.max_calls = 1;
    tool.max_pending = 8;
    CHECK(generator_slots(rollout, tool) == 24);
    tool.max_pending = 64;
    CHECK(generator_slots(rollout, tool) == 32);
    tool.max_calls = 0;
    CHECK(generator_slots(rollout, tool) == 16);
    tool.max_calls = 1;
    rollout.mode = config::RolloutMode::kRounds;
    CHECK(generator_slots(rollout, tool) == 16);
  }

  TEST_CASE("a sandbox that never answers times out into an observation; the trajectory is kept") {
    Rig rig;
    rig.submit(1);
    REQUIRE(rig.runner.waiting.size() == 1);
    CHECK(rig.sched->trigger_timeouts() >= 1);
    rig.sched->run();
    REQUIRE(rig.finished.size() == 1);
    const Trajectory& t = rig.finished[0];
    REQUIRE(t.tool_calls.size() == 1);
    CHECK(t.tool_calls[0].result.status == sandbox::ExecutionStatus::kSandboxError);
    CHECK(t.tool_calls[0].result.stderr_text.find("no result from the sandbox") != std::string::npos);
    CHECK(t.tool_calls[0].observation == "UnknownError");  // the model sees ToRL's text, not ours
    CHECK(t.text.find("```output\nUnknownError\n```") != std::string::npos);
    CHECK(t.score.has_value());
    rig.runner.answer_first(printed("late\n"));  // a late answer goes nowhere and breaks nothing
    rig.sched->run();
    CHECK(rig.finished.size() == 1);
  }

  TEST_CASE("a sandbox fault is shown as \"UnknownError\" and logged with its cause") {
    std::vector<std::string> logged;
    log::set_sink([&logged](log::Level, std::string_view line) {
      if (line.find("sandbox fault") != std::string_view::npos) logged.emplace_back(line);
    });
    Rig rig;
    rig.submit(1);
    rig.runner.answer_first(sandbox::sandbox_error("worker died"));
    rig.sched->run();
    log::set_sink(nullptr);
    REQUIRE(rig.finished.size() == 1);
    CHECK(rig.finished[0].tool_calls.at(0).observation == "UnknownError");
    CHECK(rig.finished[0].tool_calls.at(0).result.stderr_text == "worker died");
    REQUIRE(logged.size() == 1);
    CHECK(logged[0].find("sandbox fault 1 (trajectory 0, call 1") != std::string::npos);
    CHECK(logged[0].find("worker died") != std::string::npos);
    CHECK(rig.metrics.snapshot().tool_errors == 1);
  }

  TEST_CASE("a reward that does not answer in time: the trajectory comes back unscored with the reason, an infrastructure failure") {
    const std::string direct = "So \\boxed{42}.";
    Rig rig(config::RolloutMode::kAsync, 4, 64, {{ids("direct"), ids(direct)}});
    RolloutJob job;
    job.id = 0;
    for (const int64_t id : ids("direct")) job.prompt.push_back(static_cast<int32_t>(id));
    job.gold_answer = "42";
    rig.pipeline->submit({job});
    // run until the interceptor's request to the reward is out (the only request with a deadline here),
    // then let its deadline pass before the reward actor gets to it
    while (!rig.sched->has_pending_timeout() && rig.sched->try_run_once()) {}
    REQUIRE(rig.sched->has_pending_timeout());
    CHECK(rig.finished.empty());
    CHECK(rig.sched->trigger_timeouts() == 1);
    rig.sched->run();
    REQUIRE(rig.finished.size() == 1);
    const Trajectory& t = rig.finished[0];
    CHECK_FALSE(t.score.has_value());
    CHECK(t.text == direct + "<eos>");
    CHECK(t.error.rfind("not scored: ", 0) == 0);
    CHECK(t.infra_failure() == t.error);  // the learner leaves it out of its group and counts it
  }

  TEST_CASE("a sequence the generator cannot take ends as an error trajectory, scored as it stands; the others are unaffected") {
    Rig rig;
    // 600 prompt tokens do not fit the model's 512 positions: the engine refuses to admit it
    rig.submit({"What is 6*7?", std::string(600, 'x'), "What is 6*7?"});
    while (!rig.runner.waiting.empty()) {
      rig.runner.answer_first(printed("42\n"));
      rig.sched->run();
    }
    REQUIRE(rig.finished.size() == 3);
    std::sort(rig.finished.begin(), rig.finished.end(), [](const Trajectory& a, const Trajectory& b) { return a.id() < b.id(); });
    const Trajectory& refused = rig.finished[1];
    CHECK(refused.finish == FinishReason::kError);
    CHECK(refused.error.find("prompt of 600") != std::string::npos);
    CHECK(refused.response.empty());
    // the data's limit, like max_response_tokens (trajectory.hpp): no answer, reward -1
    REQUIRE(refused.score.has_value());
    CHECK(refused.score->reward == -1.0);
    CHECK(refused.infra_failure().empty());
    for (const size_t i : {size_t{0}, size_t{2}}) {
      CHECK(rig.finished[i].text == kOneCall);
      CHECK(rig.finished[i].infra_failure().empty());
    }
  }

  TEST_CASE("rounds hands over a stop only when the whole batch has stopped; async at once") {
    const std::string early = "```python\nprint(1)\n```\n```output";                           // 32 tokens
    const std::string late = "Thinking for a long while first.\n```python\nprint(2)\n```\n```output";  // 65
    std::map<std::vector<int64_t>, std::vector<int64_t>> scripts{{ids("early"), ids(early)}, {ids("late"), ids(late)}};
    for (const auto mode : {config::RolloutMode::kAsync, config::RolloutMode::kRounds}) {
      Rig rig(mode, 4, 64, scripts);
      rig.submit({"early", "late"});
      REQUIRE(rig.trace->close().ok());
      // When the generator handed trajectory 0's stop over, how many decode steps had it run?
      auto lines = read_jsonl(rig.dir.path() / "messages.jsonl");
      REQUIRE(lines);
      double handed_over_ms = -1;
      for (const Json& line : *lines) {
        if (line["trajectory"] == 0 && line["type"] == "segment") handed_over_ms = line["t_ms"];
      }
      auto timeline = read_json_file(rig.dir.path() / "timeline.json");
      REQUIRE(timeline);
      int steps_before = 0;
      for (const Json& event : (*timeline)["traceEvents"]) {
        if (event["name"] == "decode step" && (event["ts"].get<double>() + event["dur"].get<double>()) / 1000.0 <= handed_over_ms) {
          ++steps_before;
        }
      }
      CHECK(steps_before == (mode == config::RolloutMode::kAsync ? 32 : 65));
    }
  }
}

}  // namespace
}  // namespace torl::actors
