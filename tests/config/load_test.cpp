#include <doctest/doctest.h>

#include <algorithm>

#include "config/load.hpp"
#include "tests/temp_dir.hpp"

namespace torl::config {
namespace {

using testing::TempDir;

// A folder holding a model dir and a train file, so that configs can name real paths.
struct Workspace {
  TempDir dir;
  std::string model = (dir.path() / "model").string();
  std::string train = dir.write("train.jsonl", "{}\n").string();

  Workspace() { std::filesystem::create_directories(model); }

  // The smallest valid config, followed by `rest`.
  std::filesystem::path config(const std::string& rest, const std::string& name = "run.yaml") const {
    return dir.write(name, "model:\n  path: " + model + "\ndata:\n  train_files: [" + train + "]\n" + rest);
  }
  std::string where(const std::string& name, int line) const {
    return (dir.path() / name).string() + ":" + std::to_string(line);
  }
};

std::vector<std::string> messages(const std::vector<Problem>& problems) {
  std::vector<std::string> out;
  for (const auto& problem : problems) out.push_back(problem.to_string());
  return out;
}

bool contains(const std::vector<std::string>& lines, const std::string& line) {
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

TEST_SUITE("config") {
  TEST_CASE("the smallest config loads with the paper's defaults") {
    Workspace ws;
    const LoadResult result = load_config(ws.config(""));
    REQUIRE_MESSAGE(result.errors.empty(), result.status().to_string());
    const Config& config = *result.config;
    CHECK(config.model.path == ws.model);
    CHECK(config.data.train_files == std::vector<Path>{ws.train});
    CHECK(config.rollout.samples_per_prompt == 16);
    CHECK(config.rollout.prompts_per_step == 128);
    CHECK(config.rollout.max_response_tokens == 3072);
    CHECK(config.algorithm.clip_low == 0.2);
    CHECK(config.train.lr == 1e-6);
    CHECK(config.tool.max_calls == 1);
    CHECK(config.tool.feedback == ToolFeedback::kTorl);
    CHECK(config.reward.wrong == -1.0);
  }

  TEST_CASE("values of every type are read") {
    Workspace ws;
    const auto fixed = load_config(ws.dir.write("fixed.yaml",
        "model: {path: " + ws.model + "}\n"
        "data: {train_files: [" + ws.train + "], shuffle: false, eval_files: " + ws.train + "}\n"
        "rollout: {mode: rounds, temperature: 0.6, top_k: 20}\n"
        "run: {seed: 12345678901, name: 7b-c2}\n"
        "tool: {sandbox_fusion: {url: 'http://127.0.0.1:8080'}}\n"));
    REQUIRE_MESSAGE(fixed.errors.empty(), fixed.status().to_string());
    const Config& c = *fixed.config;
    CHECK(c.rollout.mode == RolloutMode::kRounds);
    CHECK(c.rollout.temperature == 0.6);
    CHECK(c.rollout.top_k == 20);
    CHECK_FALSE(c.data.shuffle);
    CHECK(c.data.eval_files == std::vector<Path>{ws.train});  // one value reads as a list of one
    CHECK(c.run.seed == 12345678901);
    CHECK(c.run.name == "7b-c2");
    CHECK(c.tool.sandbox_fusion.url == "http://127.0.0.1:8080");
  }

  TEST_CASE("a misspelt key is reported at its line with a suggestion") {
    Workspace ws;
    const auto result = load_config(ws.config("tool:\n  max_cals: 2\n"));
    REQUIRE(result.errors.size() == 1);
    CHECK(result.errors[0].to_string() ==
          ws.where("run.yaml", 6) + ": tool.max_cals: unknown key (did you mean tool.max_calls?)");
    CHECK_FALSE(result.config.has_value());
  }

  TEST_CASE("a key in the wrong section, or a misspelt section, gets a suggestion") {
    Workspace ws;
    const auto lines = messages(load_config(ws.config("tool:\n  temperature: 0.5\nrollouts:\n  n: 2\n")).errors);
    CHECK(contains(lines, ws.where("run.yaml", 6) + ": tool.temperature: unknown key (did you mean rollout.temperature or eval.temperature?)"));
    CHECK(contains(lines, ws.where("run.yaml", 7) + ": rollouts: unknown key (did you mean rollout?)"));
    CHECK(lines.size() == 2);  // rollouts.n is not reported again under its unknown section
  }

  TEST_CASE("a wrong type is reported with the value that was given") {
    Workspace ws;
    const auto lines = messages(load_config(ws.config(
        "tool:\n  workers: two\n  max_calls: \"3\"\ntrace:\n  enabled: 1\n", "types.yaml")).errors);
    CHECK(contains(lines, ws.where("types.yaml", 6) + ": tool.workers: must be an integer (got 'two')"));
    CHECK(contains(lines, ws.where("types.yaml", 7) + ": tool.max_calls: must be an integer (got the string \"3\")"));
    CHECK(contains(lines, ws.where("types.yaml", 9) + ": trace.enabled: must be true or false (got '1')"));
    CHECK(lines.size() == 3);
  }

  TEST_CASE("a key given twice in one mapping is an error at the second") {
    Workspace ws;
    CHECK(messages(load_config(ws.config("tool:\n  workers: 2\n  workers: 3\n")).errors) ==
          std::vector<std::string>{ws.where("run.yaml", 7) + ": tool.workers: duplicate key (first given at line 6)"});
  }

  TEST_CASE("every problem of a file is reported in one pass") {
    Workspace ws;
    const auto result = load_config(ws.config(
        "rollout:\n  top_p: 1.5\n  temperature: -1\n  mode: asink\n  max_batch: [1]\n"
        "tool:\n  max_calls: 1.5\n  workers: 0\n"
        "train:\n  lr: 0\n  beta2: 1\n  optimizer: sgd\n"));
    const auto lines = messages(result.errors);
    auto f = [&](int line) { return ws.where("run.yaml", line); };
    CHECK(contains(lines, f(6) + ": rollout.top_p: must be > 0 and <= 1 (got 1.5)"));
    CHECK(contains(lines, f(7) + ": rollout.temperature: must be >= 0 (got -1)"));
    CHECK(contains(lines, f(8) + ": rollout.mode: must be one of async, rounds (got 'asink'); did you mean async?"));
    CHECK(contains(lines, f(9) + ": rollout.max_batch: must be an integer (got a list)"));
    CHECK(contains(lines, f(11) + ": tool.max_calls: must be an integer (got '1.5')"));
    CHECK(contains(lines, f(12) + ": tool.workers: must be >= 1 and <= 1024 (got 0)"));
    CHECK(contains(lines, f(14) + ": train.lr: must be > 0 (got 0)"));
    CHECK(contains(lines, f(15) + ": train.beta2: must be >= 0 and < 1 (got 1)"));
    CHECK(contains(lines, f(16) + ": train.optimizer: unknown key"));
    CHECK(lines.size() == 9);
  }

  TEST_CASE("missing required keys are reported where they would go") {
    TempDir dir;
    const auto file = dir.write("empty.yaml", "model:\n  device: cpu\n");
    const auto lines = messages(load_config(file).errors);
    CHECK(contains(lines, file.string() + ":1: model.path: required key is missing"));
    CHECK(lines.size() == 1);  // data.train_files is checked by torl train, not by every command
  }

  TEST_CASE("a section must be a mapping and a field must not be one") {
    Workspace ws;
    const auto lines = messages(load_config(ws.config("tool: 3\nreward:\n  correct: {value: 1}\n")).errors);
    CHECK(contains(lines, ws.where("run.yaml", 5) + ": tool: must be a mapping of keys (got '3')"));
    CHECK(contains(lines, ws.where("run.yaml", 7) + ": reward.correct: must be a number (got a mapping)"));
    CHECK(lines.size() == 2);
  }

  TEST_CASE("invalid YAML is reported at its line") {
    TempDir dir;
    const auto file = dir.write("bad.yaml", "model:\n  path: [a, b\ntool:\n  max_calls: 1\n");
    const auto result = load_config(file);
    REQUIRE(result.errors.size() == 1);  // not followed by "required key is missing" noise
    CHECK(result.errors[0].where().rfind(file.string() + ":", 0) == 0);
    CHECK(result.errors[0].message.rfind("invalid YAML: ", 0) == 0);
  }

  TEST_CASE("a missing config file says so") {
    const auto result = load_config("/nonexistent/run.yaml");
    REQUIRE(result.errors.size() >= 1);
    CHECK(result.errors[0].to_string() == "/nonexistent/run.yaml: config file does not exist");
  }

  TEST_CASE("input paths that do not exist are errors, or warnings when not required") {
    Workspace ws;
    const auto clean = ws.dir.write("clean.yaml",
        "model: {path: " + ws.model + "}\n"
        "data:\n  train_files: [" + ws.train + "]\n  eval_files: [/nonexistent/aime.jsonl]\n"
        "tool: {python: " + ws.model + "}\n");
    const auto required = load_config(clean);
    CHECK(messages(required.errors) == std::vector<std::string>{
        ws.where("clean.yaml", 4) + ": data.eval_files: path does not exist: '/nonexistent/aime.jsonl'",
        ws.where("clean.yaml", 5) + ": tool.python: must be a file, but '" + ws.model + "' is not"});

    const auto relaxed = load_config(clean, {.require_paths = false});
    CHECK(relaxed.errors.empty());
    CHECK(relaxed.config.has_value());
    CHECK(messages(relaxed.warnings).size() == 2);
  }

  TEST_CASE("--set overrides win and are validated like the file") {
    Workspace ws;
    const auto file = ws.config("tool:\n  max_calls: 1\n  sandbox_fusion:\n    url: http://127.0.0.1:1\n");
    const auto set = load_config(file, {.overrides = {"tool.max_calls=4", "rollout.mode=rounds",
                                                     "data.eval_files=[" + ws.train + ", " + ws.train + "]",
                                                     "tool.sandbox_fusion.url="}});
    REQUIRE_MESSAGE(set.errors.empty(), set.status().to_string());
    CHECK(set.config->tool.max_calls == 4);
    CHECK(set.config->rollout.mode == RolloutMode::kRounds);
    CHECK(set.config->data.eval_files.size() == 2);
    CHECK(set.config->tool.sandbox_fusion.url.empty());  // KEY= sets an empty string

    const auto bad = load_config(file, {.overrides = {"tool.max_calls=many", "tool.max_cals=2", "tool",
                                                     "rollout={top_k: -1}"}});
    const auto lines = messages(bad.errors);
    CHECK(contains(lines, "--set tool.max_calls=many: tool.max_calls: must be an integer (got 'many')"));
    CHECK(contains(lines, "--set tool.max_cals=2: tool.max_cals: unknown key (did you mean tool.max_calls?)"));
    CHECK(contains(lines, "--set tool: expected KEY=VALUE, e.g. --set tool.max_calls=2"));
    CHECK(contains(lines, "--set rollout={top_k: -1}: rollout.top_k: must be >= 0 (got -1)"));
    CHECK(lines.size() == 4);
  }

  TEST_CASE("an include is a base: later keys win, maps merge, lists are replaced") {
    Workspace ws;
    ws.dir.write("base/paper.yaml",
                 "model:\n  path: " + ws.model + "\n  dtype: bfloat16\n"
                 "data:\n  train_files: [" + ws.train + "]\n  eval_files: [" + ws.train + ", " + ws.train + "]\n"
                 "tool:\n  max_calls: 1\n  workers: 8\n");
    const auto file = ws.dir.write("exp.yaml",
                                   "include: base/paper.yaml\n"
                                   "tool:\n  max_calls: 2\n"
                                   "data:\n  eval_files: [" + ws.train + "]\n");
    const auto result = load_config(file, {.overrides = {"tool.workers=3"}});
    REQUIRE_MESSAGE(result.errors.empty(), result.status().to_string());
    CHECK(result.config->tool.max_calls == 2);    // the including file wins
    CHECK(result.config->tool.workers == 3);      // --set wins over both
    CHECK(result.config->model.dtype == DType::kBFloat16);  // kept from the base
    CHECK(result.config->data.eval_files.size() == 1);      // lists replaced, not appended
    CHECK(result.config->data.train_files.size() == 1);

    // Errors in the base are reported at the base's own lines.
    ws.dir.write("base/broken.yaml", "tool:\n  max_calls: -1\n");
    const auto broken = load_config(ws.dir.write("uses_broken.yaml", "include: [base/broken.yaml]\n"
                                                 "model: {path: " + ws.model + "}\n"
                                                 "data: {train_files: " + ws.train + "}\n"));
    CHECK(messages(broken.errors) ==
          std::vector<std::string>{ws.where("base/broken.yaml", 2) + ": tool.max_calls: must be >= 0 (got -1)"});
  }

  TEST_CASE("a missing include and an include cycle are reported") {
    TempDir dir;
    const auto missing = dir.write("a.yaml", "include: nowhere.yaml\n");
    const auto lines = messages(load_config(missing).errors);
    CHECK(contains(lines, (dir.path() / "nowhere.yaml").string() +
                              ": config file does not exist (included from " + missing.string() + ":1)"));

    dir.write("x.yaml", "include: y.yaml\n");
    dir.write("y.yaml", "include: x.yaml\n");
    const auto cycle = load_config(dir.path() / "x.yaml");
    REQUIRE_FALSE(cycle.errors.empty());
    CHECK(cycle.errors[0].message.rfind("include cycle: ", 0) == 0);
  }

  TEST_CASE("rules across fields: float16 needs CUDA, sandbox_fusion needs a URL") {
    Workspace ws;
    const auto file = ws.config("tool:\n  backend: sandbox_fusion\n");
    CHECK(messages(load_config(file, {.overrides = {"model.dtype=float16", "tool.backend=local"}}).errors) ==
          std::vector<std::string>{"--set model.dtype=float16: model.dtype: float16 needs a CUDA device; "
                                   "use float32 or bfloat16 on cpu"});
    CHECK(messages(load_config(file, {.overrides = {"model.device=tpu", "tool.backend=local"}}).errors) ==
          std::vector<std::string>{"--set model.device=tpu: model.device: must be cpu, cuda or cuda:N (got 'tpu')"});
    CHECK(messages(load_config(file).errors) ==
          std::vector<std::string>{ws.where("run.yaml", 6) + ": tool.backend: sandbox_fusion needs "
                                   "tool.sandbox_fusion.url, an http:// URL (got '')"});
    CHECK(load_config(file, {.overrides = {"model.dtype=float16", "model.device=cuda:1",
                                           "tool.sandbox_fusion.url=http://10.0.0.1:8080"}})
              .errors.empty());
  }

  TEST_CASE("rules across fields: placement separate needs rollout.device, colocated takes none") {
    Workspace ws;
    const auto file = ws.config("rollout:\n  placement: separate\n");
    CHECK(messages(load_config(file).errors) ==
          std::vector<std::string>{ws.where("run.yaml", 5) + ": rollout.device: placement separate needs the generators' "
                                   "device: cpu, cuda or cuda:N (got '')"});
    CHECK(messages(load_config(file, {.overrides = {"rollout.device=cuda:1", "rollout.cache_during_update=free"}}).errors) ==
          std::vector<std::string>{"--set rollout.cache_during_update=free: rollout.cache_during_update: free is for "
                                   "colocated placement: separate generators share no memory with the learner"});
    CHECK(messages(load_config(file, {.overrides = {"rollout.placement=colocated", "rollout.device=cuda"}}).errors) ==
          std::vector<std::string>{"--set rollout.device=cuda: rollout.device: is for rollout.placement: separate; "
                                   "colocated generators run on model.device (got 'cuda')"});
    CHECK(load_config(file, {.overrides = {"rollout.device=cuda"}}).errors.empty());
    CHECK(load_config(file, {.overrides = {"rollout.placement=colocated", "rollout.cache_during_update=free"}})
              .errors.empty());
  }

  TEST_CASE("the printed config reads back to the same config") {
    Workspace ws;
    const auto first = load_config(ws.config("rollout:\n  temperature: 0.7\n  mode: rounds\n"
                                              "run:\n  name: \"a \\\"quoted\\\" name: yes\"\n"
                                              "train:\n  lr: 3.0e-7\n"));
    REQUIRE_MESSAGE(first.errors.empty(), first.status().to_string());
    const std::string yaml = to_yaml(*first.config);
    CHECK(yaml.find("  temperature: 0.7\n") != std::string::npos);
    CHECK(yaml.find("  lr: 3e-07\n") != std::string::npos);

    const auto second = load_config(ws.dir.write("printed.yaml", yaml));
    REQUIRE_MESSAGE(second.errors.empty(), second.status().to_string());
    CHECK(to_yaml(*second.config) == yaml);
    CHECK(second.config->run.name == "a \"quoted\" name: yes");
  }

  TEST_CASE("every known key is printed") {
    const std::string yaml = to_yaml(Config{});
    const auto keys = known_keys();
    CHECK(keys.size() > 50);
    for (const auto& key : keys) {
      const std::string last = key.substr(key.rfind('.') + 1);
      CHECK_MESSAGE(yaml.find(" " + last + ": ") != std::string::npos, key);
    }
  }
}

}  // namespace
}  // namespace torl::config
