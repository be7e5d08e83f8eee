// torl replay: recorded trajectories (a trace's trajectories.jsonl) re-run through the tool protocol
// and the reward (actors/replay.hpp), every difference from the record reported; no model needed.
#include <fstream>
#include <optional>
#include <set>

#include "actors/replay.hpp"
#include "common/files.hpp"
#include "common/json.hpp"
#include "config/load.hpp"
#include "sandbox/executor.hpp"
#include "tools/arg_reader.hpp"
#include "tools/commands.hpp"
#include "actors/run_setup.hpp"

namespace torl::tools {
namespace {

constexpr std::string_view kUsage =
    "usage: torl replay TRACE [--trajectory ID]... [--live-sandbox] [--timeline FILE] [--config CONFIG]\n"
    "                   [--set KEY=VALUE]...\n"
    "\n"
    "Re-runs the trajectories recorded in TRACE (a trace folder written with trace.enabled, or its\n"
    "trajectories.jsonl) through the tool protocol and the reward: the recorded tokens stand in for the\n"
    "model and the recorded results for the sandbox. Prints every difference from the record (tokens,\n"
    "each call's code, result and observation, finish reason, reward, outcome, answer) and a summary.\n"
    "Exit 0 when every replay matches its record, 1 when one differs.\n"
    "\n"
    "  --trajectory ID  only this trajectory (repeatable); default: all\n"
    "  --live-sandbox   run each call's code again in the sandbox (tool.*) instead of using the record\n"
    "  --timeline FILE  write the part of TRACE/timeline.json about the trajectory (--trajectory, one):\n"
    "                   its span, its tool calls and the actors' work meanwhile (open in ui.perfetto.dev)\n"
    "  --config CONFIG  the rules to replay with (default: TRACE/config.yaml, the recorded run's)\n"
    "  --set KEY=VALUE  change a rule, e.g. --set tool.feedback=full to see what the model would have seen\n";

int usage_error(std::ostream& err, const std::string& message) {
  err << "torl replay: " << message << "\n" << kUsage;
  return kExitUsage;
}

// The events of timeline.json about trajectory `id`: track names, its own span, its tool calls, and
// the actors' busy spans that overlap it (on any trajectory: what competed with it).
Status write_timeline(const std::filesystem::path& trace_dir, const actors::Trajectory& t, const std::filesystem::path& out) {
  const std::filesystem::path file = trace_dir / "timeline.json";
  std::ifstream in(file);
  if (!in) return not_found("cannot read '" + file.string() + "' (written when the traced run ended)");
  const Json timeline = Json::parse(in, nullptr, false);
  if (timeline.is_discarded() || !timeline.contains("traceEvents")) return invalid_argument("'" + file.string() + "' is not a trace");
  const double start_us = t.started_ms * 1000.0, end_us = t.finished_ms * 1000.0;
  const std::string span_id = "t" + std::to_string(t.id()), call_prefix = std::to_string(t.id()) + ".";
  Json events = Json::array();
  for (const Json& e : timeline["traceEvents"]) {
    const auto text = [&](const char* key) {
      return e.is_object() && e.contains(key) && e[key].is_string() ? e[key].get<std::string>() : std::string();
    };
    const std::string ph = text("ph"), id = text("id");
    bool keep = ph == "M" || id == span_id || id.rfind(call_prefix, 0) == 0;
    if (!keep && ph == "X") {
      const double ts = json_number(e, "ts"), dur = json_number(e, "dur");
      keep = ts < end_us && ts + dur > start_us;
    }
    if (keep) events.push_back(e);
  }
  return write_file_atomically(out, Json{{"traceEvents", events}, {"displayTimeUnit", "ms"}}.dump() + "\n");
}

// Whether `file` starts with a recorded trajectory: checked before the rules are loaded, so that a
// wrong file is named as such (not as a missing config.yaml next to it).
Status first_record_readable(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return invalid_argument("cannot read '" + file.string() + "' (record with trace.enabled)");
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const Json record = Json::parse(line, nullptr, false);
    if (record.is_discarded()) return invalid_argument(file.string() + ":" + std::to_string(number) + ": invalid JSON");
    auto recorded = actors::trajectory_from_json(record);
    if (!recorded) return recorded.status().with_context(file.string() + ":" + std::to_string(number));
    return Status();
  }
  return invalid_argument("no trajectories in " + file.string());
}

}  // namespace

int replay_command(const Args& args, std::ostream& out, std::ostream& err) {
  std::string trace, config_file, timeline;
  std::vector<std::string> sets, ids_text;
  bool live = false;
  ArgReader reader(args);
  while (!reader.done()) {
    if (reader.flag("--help") || reader.flag("-h")) return out << kUsage, kExitOk;
    if (reader.values("--set", sets) || reader.values("--trajectory", ids_text) || reader.value("--config", config_file) ||
        reader.value("--timeline", timeline)) {
      continue;
    }
    if (reader.flag("--live-sandbox")) {
      live = true;
      continue;
    }
    if (reader.first_positional(trace)) continue;
    reader.fail("unexpected argument '" + reader.peek() + "'");
  }
  if (!reader.error().empty()) return usage_error(err, reader.error());
  if (trace.empty()) return usage_error(err, "missing TRACE");
  std::set<int64_t> wanted;
  for (const std::string& text : ids_text) {
    char* end = nullptr;
    const long long id = std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0') return usage_error(err, "--trajectory takes a trajectory id (got '" + text + "')");
    wanted.insert(id);
  }
  if (!timeline.empty() && wanted.size() != 1) return usage_error(err, "--timeline needs exactly one --trajectory");

  // ---- the record and the rules it was made with ----
  const bool is_file = std::filesystem::is_regular_file(trace);
  const std::filesystem::path trace_dir = is_file ? std::filesystem::path(trace).parent_path() : std::filesystem::path(trace);
  const std::filesystem::path records_file = is_file ? std::filesystem::path(trace) : trace_dir / "trajectories.jsonl";
  if (!std::filesystem::exists(trace)) {
    return err << "torl replay: '" << trace << "' does not exist (a trace folder, or its trajectories.jsonl)\n", kExitUsage;
  }
  if (Status s = first_record_readable(records_file); !s.ok()) return err << "torl replay: " << s.message() << "\n", kExitUsage;
  if (config_file.empty()) config_file = (trace_dir / "config.yaml").string();
  config::LoadOptions options;
  options.overrides = sets;
  options.require_paths = false;
  auto loaded = config::load_config_or_error(config_file, options);
  if (!loaded) {
    return err << "torl replay: " << loaded.status().message() << "\n(the rules come from the traced run's config.yaml; "
               << "pass --config for a trace without one)\n", kExitUsage;
  }
  const config::Config& config = *loaded;
  auto tokenizer = actors::load_run_tokenizer(config);
  if (!tokenizer) return err << "torl replay: " << tokenizer.status().message() << "\n", kExitFailed;
  const actors::ToolLoop loop(actors::tool_rules(config.tool, config.rollout), *tokenizer);
  std::unique_ptr<sandbox::Executor> executor;
  if (live) {
    auto started = sandbox::Executor::start(config.tool);
    if (!started) return err << "torl replay: starting the sandbox: " << started.status().message() << "\n", kExitFailed;
    executor = std::move(*started);
  }
  const actors::ResultSource results = [&](size_t index, const std::string& code, const actors::ToolCall* recorded) {
    return executor ? executor->run(code) : actors::recorded_result(index, code, recorded);
  };

  // ---- replay, one record at a time ----
  std::ifstream in(records_file);
  if (!in) return err << "torl replay: cannot read '" << records_file.string() << "' (record with trace.enabled and trace.trajectories)\n", kExitUsage;
  int64_t replayed = 0, differing = 0, calls = 0, scored = 0, rewards_equal = 0, observations_equal = 0;
  std::set<int64_t> seen;
  std::optional<actors::Trajectory> chosen;  // --timeline's trajectory
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (line.empty()) continue;
    const Json record = Json::parse(line, nullptr, false);
    if (record.is_discarded()) {
      if (in.peek() == EOF) {  // the last line of a run that was killed while writing it
        err << "torl replay: " << records_file.string() << ":" << number << ": a torn last line, skipped\n";
        break;
      }
      return err << "torl replay: " << records_file.string() << ":" << number << ": invalid JSON\n", kExitUsage;
    }
    auto recorded = actors::trajectory_from_json(record);
    if (!recorded) return err << "torl replay: " << records_file.string() << ":" << number << ": " << recorded.status().message() << "\n", kExitUsage;
    if (!wanted.empty() && !wanted.count(recorded->id())) continue;
    seen.insert(recorded->id());
    if (!timeline.empty()) chosen = *recorded;
    const actors::Replay replay = actors::replay_trajectory(*recorded, loop, config.reward, results);
    ++replayed;
    calls += static_cast<int64_t>(recorded->tool_calls.size());
    for (size_t i = 0; i < std::min(recorded->tool_calls.size(), replay.replayed.tool_calls.size()); ++i) {
      observations_equal += actors::same_as_recorded(recorded->tool_calls[i].observation, replay.replayed.tool_calls[i].observation);
    }
    scored += recorded->score.has_value();
    rewards_equal += recorded->score && replay.replayed.score && recorded->score->reward == replay.replayed.score->reward;
    const std::string name = "trajectory " + std::to_string(recorded->id()) + " (" + recorded->job.dataset + " problem " +
                             std::to_string(recorded->job.problem) + ", sample " + std::to_string(recorded->job.sample) + ")";
    if (replay.differences.empty()) {
      if (!wanted.empty()) out << name << ": same as recorded (" << recorded->tool_calls.size() << " calls, reward "
                               << (recorded->score ? std::to_string(recorded->score->reward) : "none") << ")\n";
      continue;
    }
    ++differing;
    out << name << ": " << replay.differences.size() << " difference(s)\n";
    for (const std::string& difference : replay.differences) out << "  " << difference << "\n";
  }
  if (replayed == 0 && wanted.empty()) {
    return err << "torl replay: no trajectories in " << records_file.string() << "\n", kExitUsage;
  }
  for (const int64_t id : wanted) {
    if (!seen.count(id)) return err << "torl replay: no trajectory " << id << " in " << records_file.string() << "\n", kExitUsage;
  }
  if (chosen) {
    if (Status s = write_timeline(trace_dir, *chosen, timeline); !s.ok()) return err << "torl replay: " << s.message() << "\n", kExitFailed;
  }
  out << "replayed " << replayed << " trajectories" << (live ? " (sandbox live)" : "") << ": " << replayed - differing
      << " as recorded, " << differing << " different; rewards equal " << rewards_equal << "/" << scored
      << ", observations equal " << observations_equal << "/" << calls << "\n";
  if (!timeline.empty()) out << "timeline: " << timeline << "\n";
  return differing > 0 ? kExitFailed : kExitOk;
}

}  // namespace torl::tools
