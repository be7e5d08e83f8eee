// torl sweep: a grid or list of runs of one base config (tools/sweep_plan.hpp), each a `torl train`
// child process in its own run folder, N at a time, then one table and one plot comparing them.
// Resumable: a run whose folder has summary.json finished and is skipped; one with checkpoints
// continues from its newest (--resume).
#include <fcntl.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>

#include "common/files.hpp"
#include "common/json.hpp"
#include "common/plot.hpp"
#include "config/load.hpp"
#include "tools/arg_reader.hpp"
#include "tools/commands.hpp"
#include "tools/stop_signals.hpp"
#include "tools/sweep_plan.hpp"
#include "actors/train_metrics.hpp"

namespace torl::tools {
namespace {

constexpr std::string_view kUsage =
    "usage: torl sweep SWEEP.yaml [--parallel N] [--base CONFIG] [--set KEY=VALUE]... [--dry-run]\n"
    "\n"
    "Runs `torl train` once per run of the sweep file (a grid or a list of config overrides on a base\n"
    "config; see config/examples/sweep-*.yaml), N at a time (--parallel, or the file's parallel), each in\n"
    "RUN.output_dir/SWEEP_NAME/LABEL with its log in train.log there. A run that finished before (its\n"
    "folder has summary.json) is skipped; one that was stopped continues from its newest checkpoint; a\n"
    "folder made with other settings (RUN/sweep-run.json: base and overrides) is refused, not reused. Then\n"
    "writes SWEEP_NAME/sweep.md and sweep.csv (the metrics columns of the sweep file, from each run's\n"
    "summary.json) and sweep.png (eval accuracy, training reward and tool-use rate per step, one line a\n"
    "run), and prints the table.\n"
    "\n"
    "  --base CONFIG   start every run from CONFIG instead of the file's base (e.g. the demo config)\n"
    "  --set K=V       one more override for every run, after the sweep's own\n"
    "  --dry-run       check every run's config and list the runs with their state; run nothing\n"
    "\n"
    "SIGINT or SIGTERM is passed on to the runs: the first stops them after their step in flight with a\n"
    "checkpoint, a second Ctrl-C at once (the newest checkpoint is kept); run the same command again to\n"
    "continue.\n"
    "Exit 0 when every run finished (or the sweep was stopped), 1 when a run failed, 2 for a bad sweep\n"
    "file or config.\n";

int usage_error(std::ostream& err, const std::string& message) {
  err << "torl sweep: " << message << "\n" << kUsage;
  return kExitUsage;
}

struct RunState {
  SweepRun run;
  std::vector<std::string> sets;  // everything torl train gets, in order
  std::filesystem::path dir;
  enum class Status { kPending, kFinished, kSkipped, kStopped, kFailed } status = Status::kPending;
  int exit_code = 0;
  std::chrono::steady_clock::time_point started;  // of its process, this invocation
  double wall_s = 0;
  Json summary;  // summary.json, once finished
};

const char* status_name(RunState::Status s) {
  switch (s) {
    case RunState::Status::kPending: return "not run";
    case RunState::Status::kFinished: return "finished";
    case RunState::Status::kSkipped: return "finished earlier";
    case RunState::Status::kStopped: return "stopped";
    case RunState::Status::kFailed: return "failed";
  }
  return "?";
}

bool finished(const RunState& r) {
  return r.status == RunState::Status::kFinished || r.status == RunState::Status::kSkipped;
}

Json read_summary(const std::filesystem::path& dir) {
  std::ifstream in(dir / "summary.json");
  if (!in) return nullptr;
  Json summary = Json::parse(in, nullptr, false);
  return summary.is_discarded() ? Json(nullptr) : summary;
}

std::string last_lines(const std::filesystem::path& file, size_t count) {
  std::ifstream in(file);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::string tail;
  for (size_t i = lines.size() > count ? lines.size() - count : 0; i < lines.size(); ++i) tail += "    " + lines[i] + "\n";
  return tail;
}

// The config lines that differ between two sweep-run.json identities, a few of them, for messages.
std::string config_changes(const Json& recorded, const Json& now) {
  // to_yaml's "section:" lines then "  key: value" lines -> "section.key: value"
  const auto lines = [](const Json& identity) {
    std::set<std::string> out;
    if (!identity.is_object() || !identity.contains("config") || !identity["config"].is_string()) return out;
    std::istringstream text(identity["config"].get<std::string>());
    std::string section;
    for (std::string line; std::getline(text, line);) {
      const size_t start = line.find_first_not_of(' ');
      if (start == std::string::npos || line[start] == '#') continue;
      if (start == 0) section = line.substr(0, line.find(':'));
      else out.insert(section + "." + line.substr(start));
    }
    return out;
  };
  const std::set<std::string> before = lines(recorded), after = lines(now);
  if (before.empty()) return "its sweep-run.json holds no config: made by an older torl sweep?";
  std::string changes;
  int shown = 0;
  for (const std::string& line : after) {
    if (before.count(line) || ++shown > 4) continue;
    changes += (changes.empty() ? "now " : ", ") + line;
  }
  return changes.empty() ? "a key was removed" : changes;
}

// A run's folder belongs to one run: RUN/sweep-run.json records the base config and overrides it was
// made with. A folder made with others (the sweep file changed since) is refused rather than
// skipped as finished or continued with other settings; a new folder is claimed (unless dry_run).
Status claim_folder(const std::filesystem::path& dir, const Json& identity, bool dry_run) {
  const std::filesystem::path file = dir / "sweep-run.json";
  std::error_code ec;
  if (std::filesystem::exists(file, ec)) {
    std::ifstream in(file);
    const Json recorded = Json::parse(in, nullptr, false);
    if (recorded == identity) return Status();
    return invalid_argument("'" + dir.string() + "' holds a run made with other settings (" +
                            config_changes(recorded, identity) + "); move it away or give the sweep another name");
  }
  if (std::filesystem::exists(dir, ec) && !std::filesystem::is_empty(dir, ec)) {
    return invalid_argument("'" + dir.string() + "' exists and was not made by torl sweep; move it away");
  }
  if (dry_run) return Status();
  std::filesystem::create_directories(dir, ec);
  if (ec) return io_error("cannot create '" + dir.string() + "': " + ec.message());
  return write_file_atomically(file, identity.dump(2) + "\n");
}

// Starts `torl train` for one run, its output appended to RUN/train.log. Returns the pid, or -1.
pid_t start_run(const std::filesystem::path& base, const RunState& r) {
  std::vector<std::string> argv_text = {"torl", "train", base.string()};
  for (const std::string& set : r.sets) argv_text.insert(argv_text.end(), {"--set", set});
  argv_text.push_back("--resume");
  std::vector<char*> argv;
  for (std::string& arg : argv_text) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const std::string log = (r.dir / "train.log").string();
  const std::string log_error = "torl sweep: cannot write " + log;  // no allocation after fork
  // SIGINT/SIGTERM stay blocked from before fork until the child has its default handlers back:
  // a signal in between must neither run the sweep's handler in the child nor be lost.
  sigset_t stops, previous;
  sigemptyset(&stops);
  sigaddset(&stops, SIGINT);
  sigaddset(&stops, SIGTERM);
  ::pthread_sigmask(SIG_BLOCK, &stops, &previous);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid != 0) {
    // A process group of its own (set on both sides, so that it exists when fork returns): the
    // terminal's Ctrl-C reaches only the sweep, which passes each signal on to the whole group
    // (a --nproc launcher and its ranks alike).
    if (pid > 0) ::setpgid(pid, pid);
    ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    return pid;
  }
  ::setpgid(0, 0);
  ::signal(SIGINT, SIG_DFL);
  ::signal(SIGTERM, SIG_DFL);
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);  // the sweep killed or its terminal closed: stop cleanly too
  if (::getppid() != parent) ::_exit(kExitFailed);  // it died before prctl took effect
  ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0 || ::dup2(fd, 1) < 0 || ::dup2(fd, 2) < 0) {
    std::perror(log_error.c_str());
    ::_exit(kExitFailed);
  }
  ::execv("/proc/self/exe", argv.data());
  std::perror("torl sweep: exec");
  ::_exit(kExitFailed);
}

// The table's columns: the metrics patterns expanded over the keys of the finished runs' summaries,
// in pattern order, then key order.
std::vector<std::string> columns(const std::vector<std::string>& patterns, const std::vector<RunState>& runs) {
  std::set<std::string> keys;
  for (const RunState& r : runs) {
    if (r.summary.is_object()) {
      for (const auto& [key, value] : r.summary.items()) keys.insert(key);
    }
  }
  std::vector<std::string> out;
  for (const std::string& pattern : patterns) {
    for (const std::string& key : keys) {
      if (metric_matches(pattern, key) && std::find(out.begin(), out.end(), key) == out.end()) out.push_back(key);
    }
  }
  return out;
}

std::string format_number(const Json& value, const char* format) {
  if (!value.is_number()) return "";
  char text[32];
  std::snprintf(text, sizeof text, format, value.get<double>());
  return text;
}

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (const char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

void write_tables(const std::vector<RunState>& runs, const std::vector<std::string>& cols, std::string& markdown,
                  std::string& csv) {
  std::ostringstream md, cs;
  md << "| run | state |";
  cs << "run,state";
  for (const std::string& c : cols) md << ' ' << c << " |", cs << ',' << csv_field(c);
  md << "\n|---|---|";
  for (size_t i = 0; i < cols.size(); ++i) md << "---|";
  md << '\n', cs << '\n';
  for (const RunState& r : runs) {
    std::string state = status_name(r.status);
    if (r.status == RunState::Status::kFailed) state += " (exit " + std::to_string(r.exit_code) + ")";
    md << "| " << r.run.label << " | " << state << " |";
    cs << csv_field(r.run.label) << ',' << csv_field(state);
    for (const std::string& c : cols) {
      const Json value = r.summary.is_object() && r.summary.contains(c) ? r.summary[c] : Json(nullptr);
      md << ' ' << format_number(value, "%.3f") << " |";
      cs << ',' << format_number(value, "%.6g");
    }
    md << '\n', cs << '\n';
  }
  markdown = md.str();
  csv = cs.str();
}

// sweep.png: per eval set, its accuracy at each eval; the training reward and tool-use rate per step;
// one line per run.
Status write_sweep_plot(const std::filesystem::path& file, const std::vector<RunState>& runs) {
  std::map<std::string, plot::Panel> eval_panels;  // eval set -> its panel
  plot::Panel reward{"training reward (mean per step)", "step", {}, std::nullopt, std::nullopt};
  plot::Panel tool{"tool-use rate per training step", "step", {}, 0.0, 1.0};
  for (const RunState& r : runs) {
    plot::Series reward_line{r.run.label, {}, {}}, tool_line{r.run.label, {}, {}};
    for (const Json& step : actors::read_step_records(r.dir / "metrics.jsonl")) {
      reward_line.x.push_back(json_number(step, "step"));
      reward_line.y.push_back(json_number(step, "reward/mean"));
      tool_line.x.push_back(json_number(step, "step"));
      tool_line.y.push_back(json_number(step, "tool/use_rate"));
    }
    reward.series.push_back(std::move(reward_line));
    tool.series.push_back(std::move(tool_line));
    std::map<std::string, plot::Series> eval_lines;
    for (const Json& eval : actors::read_step_records(r.dir / "eval.jsonl")) {
      const Json sets = eval.contains("datasets") && eval["datasets"].is_array() ? eval["datasets"] : Json::array();
      for (const Json& set : sets) {
        const std::string name = set.is_object() && set.contains("name") && set["name"].is_string() ? set["name"].get<std::string>() : "?";
        plot::Series& line = eval_lines.try_emplace(name, plot::Series{r.run.label, {}, {}}).first->second;
        line.x.push_back(json_number(eval, "step"));
        line.y.push_back(json_number(set, "accuracy"));
      }
    }
    for (auto& [name, line] : eval_lines) {
      eval_panels.try_emplace(name, plot::Panel{"eval accuracy: " + name, "step", {}, 0.0, 1.0})
          .first->second.series.push_back(std::move(line));
    }
  }
  std::vector<plot::Panel> panels;
  for (auto& [name, panel] : eval_panels) panels.push_back(std::move(panel));
  panels.push_back(std::move(reward));
  panels.push_back(std::move(tool));
  return plot::write_chart(file, panels);
}

}  // namespace

int sweep_command(const Args& args, std::ostream& out, std::ostream& err) {
  std::string file, base_override;
  std::vector<std::string> extra_sets;
  long parallel = 0;
  bool dry_run = false;
  ArgReader reader(args);
  while (!reader.done()) {
    if (reader.flag("--help") || reader.flag("-h")) return out << kUsage, kExitOk;
    if (reader.values("--set", extra_sets) || reader.integer("--parallel", parallel) ||
        reader.value("--base", base_override)) {
      continue;
    }
    if (reader.flag("--dry-run")) {
      dry_run = true;
      continue;
    }
    if (reader.first_positional(file)) continue;
    reader.fail("unexpected argument '" + reader.peek() + "'");
  }
  if (!reader.error().empty()) return usage_error(err, reader.error());
  if (file.empty()) return usage_error(err, "missing SWEEP.yaml");
  if (parallel < 0 || parallel > 64) return usage_error(err, "--parallel must be in [1, 64]");

  auto loaded = load_sweep(file);
  if (!loaded) return err << "torl sweep: " << loaded.status().message() << "\n", kExitUsage;
  SweepPlan& plan = *loaded;
  if (!base_override.empty()) plan.base = base_override;
  if (parallel > 0) plan.parallel = static_cast<int>(parallel);

  // ---- every run's config, checked before anything runs ----
  std::vector<RunState> runs;
  std::filesystem::path sweep_dir;
  std::set<std::string> warnings;  // each once, not once per run
  for (const SweepRun& run : plan.runs) {
    RunState r{run, plan.sets, {}};
    r.sets.insert(r.sets.end(), run.sets.begin(), run.sets.end());
    r.sets.insert(r.sets.end(), extra_sets.begin(), extra_sets.end());
    config::LoadOptions options;
    options.overrides = r.sets;
    options.require_paths = !dry_run;
    config::LoadResult result = config::load_config(plan.base, options);
    for (const config::Problem& warning : result.warnings) warnings.insert(warning.to_string());
    if (!result.config) {
      return err << "torl sweep: " << file << ": run '" << run.label << "': " << result.status().message() << "\n",
             kExitUsage;
    }
    const config::Config* config = &*result.config;
    sweep_dir = std::filesystem::path(config->run.output_dir) / plan.name;
    r.dir = sweep_dir / run.label;
    // what makes the run this run: its whole resolved config (base file edits included)
    const Json identity = {{"config", config::to_yaml(*config)}};
    // names as YAML double-quoted strings, so no character of a label is read as YAML syntax
    r.sets.push_back("run.output_dir=" + Json(sweep_dir.string()).dump());
    r.sets.push_back("run.name=" + Json(run.label).dump());
    // runs side by side must not share a port or a trace folder
    if (config->run.metrics_port > 0) {
      r.sets.push_back("run.metrics_port=" + std::to_string(config->run.metrics_port + static_cast<int>(runs.size())));
    }
    if (!config->trace.dir.empty()) {
      r.sets.push_back("trace.dir=" + Json((std::filesystem::path(config->trace.dir) / run.label).string()).dump());
    }
    if (Status s = claim_folder(r.dir, identity, dry_run); !s.ok()) {
      return err << "torl sweep: " << file << ": run '" << run.label << "': " << s.message() << "\n", kExitUsage;
    }
    r.summary = read_summary(r.dir);
    if (r.summary.is_object()) r.status = RunState::Status::kSkipped;
    runs.push_back(std::move(r));
  }
  for (const std::string& warning : warnings) err << "torl sweep: warning: " << warning << "\n";
  const size_t total = runs.size();
  if (dry_run) {
    out << "torl sweep: " << plan.name << ": " << total << " runs of " << plan.base.string() << " in "
        << sweep_dir.string() << ", " << plan.parallel << " at a time\n";
    for (const RunState& r : runs) {
      out << "  " << r.run.label << ": " << (finished(r) ? "finished earlier" : "to run") << "  (";
      for (size_t i = 0; i < r.run.sets.size(); ++i) out << (i ? " " : "") << "--set " << r.run.sets[i];
      out << ")\n";
    }
    return kExitOk;
  }

  // ---- the runs, `parallel` at a time ----
  std::mutex mutex;
  std::map<pid_t, size_t> running;  // guarded by mutex: pid -> index in runs
  bool stopping = false;            // guarded by mutex
  // Each SIGINT/SIGTERM is passed on to the runs (in process groups of their own): the first stops
  // them after their step in flight, a second SIGINT at once; the sweep waits for them either way.
  const StopSignals signals(
      [&](int signal) {
        std::lock_guard lock(mutex);
        stopping = true;
        for (const auto& [pid, index] : running) ::kill(-pid, signal);
      },
      /*every_signal=*/true);
  size_t next = 0;
  const auto place = [&](size_t i) { return "[" + std::to_string(i + 1) + "/" + std::to_string(total) + "] " + runs[i].run.label; };
  while (true) {
    {
      std::lock_guard lock(mutex);
      while (!stopping && next < total && running.size() < static_cast<size_t>(plan.parallel)) {
        RunState& r = runs[next];
        if (finished(r)) {
          err << "torl sweep: " << place(next) << ": finished earlier, skipped\n";
          ++next;
          continue;
        }
        const pid_t pid = start_run(plan.base, r);
        if (pid < 0) {
          err << "torl sweep: " << place(next) << ": cannot start a process: " << std::strerror(errno) << "\n";
          r.status = RunState::Status::kFailed;
          r.exit_code = kExitFailed;
          ++next;
          continue;
        }
        running[pid] = next;
        r.started = std::chrono::steady_clock::now();
        err << "torl sweep: " << place(next) << ": started; log " << (r.dir / "train.log").string() << "\n";
        ++next;
      }
      if (running.empty()) break;
    }
    // Which child ended, without reaping it yet: until it leaves `running` (under the lock the
    // signal callback takes) its pid cannot be reused by another process and signalled by mistake.
    siginfo_t ended{};
    if (::waitid(P_ALL, 0, &ended, WEXITED | WNOWAIT) != 0) {
      if (errno == EINTR) continue;
      err << "torl sweep: wait: " << std::strerror(errno) << "\n";  // no child (SIGCHLD ignored?)
      break;
    }
    const pid_t pid = ended.si_pid;
    std::lock_guard lock(mutex);
    const auto it = running.find(pid);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (it == running.end()) continue;
    RunState& r = runs[it->second];
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - r.started).count();
    r.summary = read_summary(r.dir);
    // a run that exits 0 without summary.json, or that a passed-on signal ended, was stopped
    const bool signalled = r.exit_code == 128 + SIGINT || r.exit_code == 128 + SIGTERM;  // also a shell's 130/143
    r.status = r.summary.is_object()                  ? RunState::Status::kFinished
               : r.exit_code == 0 || (stopping && signalled) ? RunState::Status::kStopped
                                                       : RunState::Status::kFailed;
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%.1f s", r.wall_s);
    err << "torl sweep: " << place(it->second) << ": " << status_name(r.status) << " after " << seconds;
    if (r.status == RunState::Status::kFailed) {
      err << " (exit " << r.exit_code << "); the end of its log:\n" << last_lines(r.dir / "train.log", 8);
    } else {
      err << "\n";
    }
    running.erase(it);
  }

  // ---- the table and the plot ----
  const std::vector<std::string> cols = columns(plan.metrics.empty() ? kDefaultSweepMetrics : plan.metrics, runs);
  std::string markdown, csv;
  write_tables(runs, cols, markdown, csv);
  std::error_code made;
  std::filesystem::create_directories(sweep_dir, made);
  for (const auto& [name, text] : {std::pair{"sweep.md", &markdown}, std::pair{"sweep.csv", &csv}}) {
    if (Status s = write_file_atomically(sweep_dir / name, *text); !s.ok()) return err << "torl sweep: " << s.message() << "\n", kExitFailed;
  }
  if (Status s = write_sweep_plot(sweep_dir / "sweep.png", runs); !s.ok()) {
    return err << "torl sweep: " << s.message() << "\n", kExitFailed;
  }
  out << markdown;
  out << "table: " << (sweep_dir / "sweep.md").string() << ", " << (sweep_dir / "sweep.csv").string()
      << "; plot: " << (sweep_dir / "sweep.png").string() << "\n";
  size_t done = 0, failed = 0;
  for (const RunState& r : runs) done += finished(r), failed += r.status == RunState::Status::kFailed;
  if (done < total) {
    err << "torl sweep: " << done << " of " << total << " runs finished"
        << (failed ? "; " + std::to_string(failed) + " failed (see their train.log)" : "")
        << "; run the same command again to continue the others\n";
  }
  return failed > 0 ? kExitFailed : kExitOk;
}

}  // namespace torl::tools
