// TraceRecorder: what trace.enabled writes, for debugging one rollout and seeing the overlap.
//   messages.jsonl      one line per message between actors: t_ms, from, to, type, trajectory, bytes
//   trajectories.jsonl  every finished trajectory whole (tokens, text, tool calls and results, score),
//                       enough to replay it without the model or the sandbox (trace.trajectories)
//   timeline.json       Chrome/Perfetto trace events: each actor's busy spans on its own track, each
//                       tool call and each trajectory as an async span (open in ui.perfetto.dev)
// Every method locks; any thread. Lines are written as they happen; timeline.json at close().
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "actors/metrics.hpp"
#include "actors/trajectory.hpp"
#include "common/status.hpp"
#include "config/config.hpp"

namespace torl::actors {

class TraceRecorder {
 public:
  // Creates `dir`, writes the run's resolved `config` there as config.yaml (what torl replay needs
  // besides the trajectories: tool rules, reward, tokenizer) and opens the files (trajectories.jsonl
  // with config.trace.trajectories); fails naming the path. `clock` must outlive the recorder.
  static Expected<std::unique_ptr<TraceRecorder>> open(const std::filesystem::path& dir, const config::Config& config,
                                                       const RunClock& clock);

  void message(std::string_view from, std::string_view to, std::string_view type, int64_t trajectory,
               size_t bytes);
  // `actor` did `what` from start_ms to now.
  void busy(std::string_view actor, std::string_view what, double start_ms, int64_t trajectory = -1);
  void tool_call(int64_t trajectory, int index, double start_ms, std::string_view status);
  void trajectory(const Trajectory& trajectory);

  // Writes timeline.json and flushes everything; later calls record nothing.
  Status close();
  const std::filesystem::path& dir() const { return dir_; }

 private:
  TraceRecorder(std::filesystem::path dir, bool trajectories, const RunClock& clock);
  int track(std::string_view actor);  // guarded by mutex_
  // Whether the timeline reached kMaxTimelineEvents (warns once); guarded by mutex_. The timeline is
  // held in memory until close(), so a long traced run keeps only its beginning.
  bool timeline_full();
  static constexpr size_t kMaxTimelineEvents = 2'000'000;

  std::filesystem::path dir_;
  bool record_trajectories_;
  const RunClock& clock_;
  std::mutex mutex_;
  // ---- guarded by mutex_ ----
  std::ofstream messages_, trajectories_;
  std::vector<Json> events_;             // the timeline, written at close()
  std::map<std::string, int, std::less<>> tracks_;  // actor name -> tid
  bool closed_ = false;
  bool timeline_truncated_ = false;
};

}  // namespace torl::actors
