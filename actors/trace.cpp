#include "actors/trace.hpp"

#include "common/files.hpp"
#include "common/log.hpp"
#include "config/load.hpp"

namespace torl::actors {
namespace {

constexpr int kActorsPid = 1, kToolCallsPid = 2, kTrajectoriesPid = 3;

Json process_name(int pid, std::string_view name) {
  return {{"name", "process_name"}, {"ph", "M"}, {"pid", pid}, {"tid", 0}, {"args", {{"name", name}}}};
}

}  // namespace

TraceRecorder::TraceRecorder(std::filesystem::path dir, bool trajectories, const RunClock& clock)
    : dir_(std::move(dir)), record_trajectories_(trajectories), clock_(clock) {}

Expected<std::unique_ptr<TraceRecorder>> TraceRecorder::open(const std::filesystem::path& dir,
                                                             const config::Config& config, const RunClock& clock) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) return Status(StatusCode::kIoError, "trace: cannot create '" + dir.string() + "': " + error.message());
  if (Status s = write_file_atomically(dir / "config.yaml", config::to_yaml(config)); !s.ok()) return s.with_context("trace");
  const bool trajectories = config.trace.trajectories;
  std::unique_ptr<TraceRecorder> recorder(new TraceRecorder(dir, trajectories, clock));
  recorder->messages_.open(dir / "messages.jsonl");
  if (!recorder->messages_) return Status(StatusCode::kIoError, "trace: cannot write '" + (dir / "messages.jsonl").string() + "'");
  if (trajectories) {
    recorder->trajectories_.open(dir / "trajectories.jsonl");
    if (!recorder->trajectories_) {
      return Status(StatusCode::kIoError, "trace: cannot write '" + (dir / "trajectories.jsonl").string() + "'");
    }
  }
  recorder->events_ = {process_name(kActorsPid, "actors"), process_name(kToolCallsPid, "tool calls"),
                       process_name(kTrajectoriesPid, "trajectories")};
  return recorder;
}

bool TraceRecorder::timeline_full() {
  if (events_.size() < kMaxTimelineEvents) return false;
  if (!timeline_truncated_) TORL_LOG(kWarn) << "trace: timeline.json holds its first " << kMaxTimelineEvents
                                             << " events; later ones are not kept (messages and trajectories are)";
  timeline_truncated_ = true;
  return true;
}

int TraceRecorder::track(std::string_view actor) {
  if (auto it = tracks_.find(actor); it != tracks_.end()) return it->second;
  const int tid = static_cast<int>(tracks_.size()) + 1;
  tracks_.emplace(std::string(actor), tid);
  events_.push_back({{"name", "thread_name"}, {"ph", "M"}, {"pid", kActorsPid}, {"tid", tid}, {"args", {{"name", actor}}}});
  return tid;
}

void TraceRecorder::message(std::string_view from, std::string_view to, std::string_view type, int64_t trajectory,
                            size_t bytes) {
  const double now = clock_.now_ms();
  std::lock_guard lock(mutex_);
  if (closed_) return;
  messages_ << to_jsonl_line({{"t_ms", now}, {"from", from}, {"to", to}, {"type", type},
                              {"trajectory", trajectory}, {"bytes", bytes}})
            << '\n';
}

void TraceRecorder::busy(std::string_view actor, std::string_view what, double start_ms, int64_t trajectory) {
  const double now = clock_.now_ms();
  std::lock_guard lock(mutex_);
  if (closed_) return;
  if (timeline_full()) return;
  Json event = {{"name", what}, {"ph", "X"}, {"pid", kActorsPid}, {"tid", track(actor)},
                {"ts", start_ms * 1000.0}, {"dur", (now - start_ms) * 1000.0}};
  if (trajectory >= 0) event["args"] = {{"trajectory", trajectory}};
  events_.push_back(std::move(event));
}

void TraceRecorder::tool_call(int64_t trajectory, int index, double start_ms, std::string_view status) {
  const double now = clock_.now_ms();
  std::lock_guard lock(mutex_);
  if (closed_) return;
  if (timeline_full()) return;
  const std::string id = std::to_string(trajectory) + "." + std::to_string(index);
  const std::string name = "call " + std::to_string(index + 1) + " of trajectory " + std::to_string(trajectory);
  events_.push_back({{"name", name}, {"cat", "tool"}, {"ph", "b"}, {"id", id}, {"pid", kToolCallsPid},
                     {"tid", 0}, {"ts", start_ms * 1000.0}});
  events_.push_back({{"name", name}, {"cat", "tool"}, {"ph", "e"}, {"id", id}, {"pid", kToolCallsPid},
                     {"tid", 0}, {"ts", now * 1000.0}, {"args", {{"status", status}}}});
}

void TraceRecorder::trajectory(const Trajectory& t) {
  Json record = to_json(t);
  std::lock_guard lock(mutex_);
  if (closed_) return;
  const std::string name = "trajectory " + std::to_string(t.id());
  const std::string id = "t" + std::to_string(t.id());
  const bool room = !timeline_full() && events_.size() + 2 <= kMaxTimelineEvents;  // both ends or neither
  if (room) events_.push_back({{"name", name}, {"cat", "trajectory"}, {"ph", "b"}, {"id", id}, {"pid", kTrajectoriesPid},
                     {"tid", 0}, {"ts", t.started_ms * 1000.0}});
  if (room) events_.push_back({{"name", name}, {"cat", "trajectory"}, {"ph", "e"}, {"id", id}, {"pid", kTrajectoriesPid},
                     {"tid", 0}, {"ts", t.finished_ms * 1000.0},
                     {"args", {{"tool_calls", t.tool_calls.size()}, {"finish", finish_reason_name(t.finish)},
                               {"reward", t.score ? Json(t.score->reward) : Json(nullptr)}}}});
  // flushed line by line: a run that is killed leaves whole records (at most the last one torn)
  if (record_trajectories_) trajectories_ << to_jsonl_line(record) << '\n' << std::flush;
}

Status TraceRecorder::close() {
  std::lock_guard lock(mutex_);
  if (closed_) return Status();
  closed_ = true;
  messages_.flush();
  if (record_trajectories_) trajectories_.flush();
  std::ofstream timeline(dir_ / "timeline.json");
  timeline << to_jsonl_line({{"traceEvents", events_}, {"displayTimeUnit", "ms"}}) << '\n';
  timeline.flush();
  if (!timeline || !messages_ || (record_trajectories_ && !trajectories_)) {
    return Status(StatusCode::kIoError, "trace: writing to '" + dir_.string() + "' failed (disk full?)");
  }
  return Status();
}

}  // namespace torl::actors
