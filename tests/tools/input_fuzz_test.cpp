// Mutated configs and argument lists (issue #24): every leaf key of the resolved fixture config set
// to each of a list of hostile values, through `torl config check` and `torl train --plan` (the dry
// paths: nothing is loaded but config.json), and mutated argument lists for the commands that parse
// without running a model. Each ends with exit 0 or 2 (1 where a file is named as missing or bad)
// and, for 2, a message naming the key or argument; an abort or an escaping exception fails the suite.
#include <doctest/doctest.h>

#include <sstream>
#include <string>
#include <vector>

#include "tests/tools/command_run.hpp"

namespace torl::tools {
namespace {

const std::string kSource = TORL_SOURCE_DIR;

// "section.key" of every leaf of a resolved config as `torl config check` prints it.
std::vector<std::string> leaf_keys(const std::string& resolved) {
  std::vector<std::string> keys;
  std::istringstream lines(resolved);
  std::vector<std::string> path;  // one name per indent level of two spaces
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == '#') continue;
    const size_t indent = line.find_first_not_of(' ');
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    const size_t level = indent / 2;
    path.resize(level);
    const std::string name = line.substr(indent, colon - indent);
    if (colon + 1 == line.size()) {
      path.push_back(name);  // a section
      continue;
    }
    std::string key;
    for (const auto& part : path) key += part + ".";
    keys.push_back(key + name);
  }
  return keys;
}

const std::vector<std::string> kHostile = {
    "-1", "0", "2147483648", "99999999999999999999", "1e308", ".nan", "-.inf", "''", "[]", "{}", "[1, [2]]",
    "~", "../../x", "yes", "0.5", std::string(5000, 'a'), "\"\\u0000\"", "cuda:99"};

bool names(const testing::CommandRun& run, const std::string& what) {
  return (run.out + run.err).find(what) != std::string::npos;
}

TEST_SUITE("tools") {
  TEST_CASE("every config key set to hostile values: config check and train --plan end cleanly, naming the key") {
    const std::string base = kSource + "/config/examples/fixture-train.yaml";
    const auto resolved = testing::run_command(config_command, {"check", base});
    REQUIRE_MESSAGE(resolved.code == 0, resolved.err);
    const auto keys = leaf_keys(resolved.out);
    REQUIRE(keys.size() > 50);
    int cases = 0, refused = 0, planned = 0;
    for (const auto& key : keys) {
      for (const auto& value : kHostile) {
        const std::string set = key + "=" + value;
        const auto check = testing::run_command(config_command, {"check", base, "--set", set});
        ++cases;
        CHECK_MESSAGE((check.code == 0 || check.code == 2), set << ": exit " << check.code << "\n" << check.err);
        if (check.code == 2) {
          ++refused;
          CHECK_MESSAGE(names(check, key), set << ": the refusal does not name the key\n" << check.out << check.err);
          continue;
        }
        const auto plan = testing::run_command(train_command, {base, "--set", set, "--plan"});
        ++planned;
        CHECK_MESSAGE((plan.code == 0 || plan.code == 1 || plan.code == 2), set << ": --plan exit " << plan.code << "\n" << plan.err);
        if (plan.code != 0) CHECK_MESSAGE(!plan.err.empty(), set << ": --plan failed without a word");
      }
    }
    MESSAGE(cases << " settings tried: " << refused << " refused by config check, " << planned << " through train --plan");
    CHECK(cases >= 500);
  }

  TEST_CASE("mutated argument lists end cleanly with usage errors") {
    const std::string base = kSource + "/config/examples/fixture-train.yaml";
    const std::vector<std::pair<int (*)(const Args&, std::ostream&, std::ostream&), Args>> runs = {
        {train_command, {base, "--plan", "--device-memory", "nan"}},
        {train_command, {base, "--plan", "--device-memory", "-1"}},
        {train_command, {base, "--plan", "--device-memory", "1e400"}},
        {train_command, {base, "--plan", "--model-config", "/nonexistent/config.json"}},
        {train_command, {base, "--nproc", "100000"}},
        {train_command, {base, "--nproc", "two"}},
        {train_command, {base, "--set"}},
        {train_command, {base, "--set", "="}},
        {train_command, {base, "--set", "rollout"}},
        {train_command, {"--resume"}},
        {train_command, {base, base}},
        {train_command, {"/nonexistent.yaml"}},
        {train_command, {"bench", "--sequences", "-1"}},
        {train_command, {"bench", "--length", "99999999999"}},
        {train_command, {"bench", "--sequences", "60000", "--length", "1000000"}},
        {train_command, {"bench", "--repeat", "0"}},
        {eval_command, {base, "--output"}},
        {eval_command, {"/nonexistent.yaml"}},
        {eval_command, {base, "--set", "data.eval_files=[]"}},
        {eval_command, {"bench", "--trajectories", "-5"}},
        {eval_command, {"bench", "--latency-ms", "5-1"}},
        {eval_command, {"bench", "--latency-ms", "x"}},
        {generate_command, {"--model"}},
        {generate_command, {"--model", "/nonexistent", "--prompt", "hi"}},
        {generate_command, {"bench", "--random", "--batch", "0"}},
        {generate_command, {"bench", "--random", "--new-tokens", "1"}},
        {grade_command, {"--gold"}},
        {grade_command, {"bench", "--repeat", "-1"}},
        {grade_command, {"bench", "--file", "/nonexistent.jsonl"}},
        {config_command, {"check"}},
        {config_command, {"check", base, "--set", "run.seed=-1"}},
        {config_command, {"lint", base}},
        {replay_command, {}},
        {replay_command, {"/nonexistent", "--trajectory", "x"}},
        {sweep_command, {"/nonexistent.yaml"}},
        {sweep_command, {base, "--parallel", "0"}},
    };
    for (const auto& [command, args] : runs) {
      const auto run = testing::run_command(command, args);
      std::string shown;
      for (const auto& arg : args) shown += " " + arg;
      CHECK_MESSAGE((run.code == 1 || run.code == 2), shown << ": exit " << run.code << "\n" << run.err);
      CHECK_MESSAGE(!run.err.empty(), shown << ": failed without a word");
    }
  }
}

}  // namespace
}  // namespace torl::tools
