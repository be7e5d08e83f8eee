#include <doctest/doctest.h>

#include "tests/temp_dir.hpp"
#include "tests/tools/command_run.hpp"

namespace torl::tools {
namespace {

using Run = testing::CommandRun;

Run torl(const Args& args) { return testing::run_command(torl_main, args); }

const std::string kExamples = std::string(TORL_SOURCE_DIR) + "/config/examples/";

TEST_SUITE("tools") {
  TEST_CASE("torl config check prints the resolved paper config") {
    const Run run = torl({"config", "check", kExamples + "torl-1.5b.yaml", "--set", "tool.max_calls=2"});
    CHECK(run.code == kExitOk);
    CHECK(run.out.find("tool:\n  max_calls: 2\n") != std::string::npos);
    CHECK(run.out.find("  samples_per_prompt: 16\n") != std::string::npos);
    CHECK(run.out.find("  lr: 1e-06\n") != std::string::npos);
  }

  TEST_CASE("the demo config checks too") {
    const Run run = torl({"config", "check", kExamples + "demo.yaml"});
    CHECK(run.code == kExitOk);
    CHECK(run.out.find("rollout:\n") != std::string::npos);
  }

  TEST_CASE("torl config check lists every problem on stderr and exits 2") {
    testing::TempDir dir;
    const auto file = dir.write("bad.yaml", "tool:\n  max_cals: 2\n  workers: lots\nrollout:\n  top_p: 2\n");
    const Run run = torl({"config", "check", file.string()});
    CHECK(run.code == kExitUsage);
    CHECK(run.out.empty());
    const std::string f = file.string();
    CHECK(run.err.find(f + ":2: tool.max_cals: unknown key (did you mean tool.max_calls?)\n") != std::string::npos);
    CHECK(run.err.find(f + ":3: tool.workers: must be an integer (got 'lots')\n") != std::string::npos);
    CHECK(run.err.find(f + ":5: rollout.top_p: must be > 0 and <= 1 (got 2)\n") != std::string::npos);
    CHECK(run.err.find(f + ":1: model.path: required key is missing\n") == std::string::npos);
    CHECK(run.err.find(f + ": model.path: required key is missing\n") != std::string::npos);
    CHECK(run.err.find("4 problems in " + f + "\n") != std::string::npos);
  }

  TEST_CASE("missing input paths warn in config check and fail with --strict") {
    testing::TempDir dir;
    const auto file = dir.write("paths.yaml", "model: {path: /nonexistent/model}\n"
                                              "data: {train_files: [/nonexistent/train.jsonl]}\n");
    const Run relaxed = torl({"config", "check", file.string()});
    CHECK(relaxed.code == kExitOk);
    CHECK(relaxed.err.find("warning: " + file.string() + ":1: model.path: path does not exist: '/nonexistent/model'") != std::string::npos);
    const Run strict = torl({"config", "check", file.string(), "--strict"});
    CHECK(strict.code == kExitUsage);
    CHECK(strict.err.find("2 problems in ") != std::string::npos);
  }

  TEST_CASE("usage errors exit 2 and say what is wrong") {
    CHECK(torl({}).code == kExitUsage);
    CHECK(torl({"config", "check"}).err.find("missing FILE") != std::string::npos);
    CHECK(torl({"config", "check", "a.yaml", "--sett", "x=1"}).err.find("unexpected argument '--sett'") != std::string::npos);
    const Run dangling = torl({"config", "check", "a.yaml", "--set"});
    CHECK(dangling.code == kExitUsage);
    CHECK(dangling.err.rfind("torl config check: --set needs a value\n", 0) == 0);
    const Run unknown = torl({"trian"});
    CHECK(unknown.code == kExitUsage);
    CHECK(unknown.err == "torl: unknown command 'trian'; see torl --help\n");
  }

  TEST_CASE("--help lists the commands and --version the libraries") {
    const Run help = torl({"--help"});
    CHECK(help.code == kExitOk);
    for (const char* name : {"train", "eval", "sweep", "replay", "config", "sandbox", "grade", "tokenize",
                             "generate"}) {
      CHECK_MESSAGE(help.out.find("  " + std::string(name) + " ") != std::string::npos, name);
    }
    const Run version = torl({"--version"});
    CHECK(version.code == kExitOk);
    CHECK(version.out.find("LibTorch 2.") != std::string::npos);
    CHECK(version.out.find("CAF 0.17.") != std::string::npos);
  }
}

}  // namespace
}  // namespace torl::tools
