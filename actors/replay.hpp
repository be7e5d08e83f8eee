// Replay: re-running a recorded trajectory (trace.trajectories, trajectories.jsonl) through the tool
// protocol (ToolLoop) and the reward, with the recorded sampled tokens standing in for the model and
// recorded (or freshly run) sandbox results standing in for the sandbox, and listing every way the
// result differs from the record. What `torl replay` runs; plain C++, any thread.
//
// The sampled tokens (loss mask 1) are fed back in order, split where the generator would have
// paused: where "```output" completes while stop strings are on (a StopMatcher, reset at every
// resume, as in the engine); the last piece ends with the recorded finish reason. The tool text
// (mask 0) is not fed back: the protocol writes its own, so a changed observation shows up as a
// difference in the response.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "actors/tool_loop.hpp"
#include "actors/trajectory.hpp"
#include "common/json.hpp"
#include "common/status.hpp"
#include "config/config.hpp"

namespace torl::actors {

// The result of the `index`-th execution of `code` in a replay; `recorded` is the record's call
// `index`, or null when the record has fewer calls.
using ResultSource =
    std::function<sandbox::ExecutionResult(size_t index, const std::string& code, const ToolCall* recorded)>;

// The record's own results: call i gets the recorded result of call i (a sandbox error when the
// record has no call i).
sandbox::ExecutionResult recorded_result(size_t index, const std::string& code, const ToolCall* recorded);

struct Replay {
  Trajectory replayed;
  std::vector<std::string> differences;  // empty: the replay matches the record
};

// Replays `recorded` with `loop`'s rules and scores it with `reward`, then compares (compare_replay).
Replay replay_trajectory(const Trajectory& recorded, const ToolLoop& loop, const config::RewardConfig& reward,
                         const ResultSource& results);

// `text` as it reads back from a JSONL record, whose strings hold invalid UTF-8 (a byte-level model's
// stray byte, a program's binary output) as U+FFFD; and whether two strings are equal in that form.
// Replay compares strings so, since a record cannot tell such bytes apart; tokens are compared exactly.
std::string as_recorded(const std::string& text);
bool same_as_recorded(const std::string& a, const std::string& b);

// Every difference of `replayed` from `recorded`, one readable line each: the tokens and their loss
// mask (the first position that differs, with the text around it), each call's code, result and
// observation, void calls, the finish reason, the text, the reward, outcome and answer. Timings
// (queue, wall, latency) are not compared.
std::vector<std::string> compare_replay(const Trajectory& recorded, const Trajectory& replayed,
                                        const model::Tokenizer& tokenizer);

}  // namespace torl::actors
