// reward_actor: scores finished trajectories with rewards::score_response (DESIGN.md §5). Pure CPU
// work of microseconds to milliseconds per answer; spawned detached in real runs so that a slow
// symbolic comparison never holds up CAF's shared threads.
#pragma once

#include "actors/messages.hpp"
#include "actors/trace.hpp"
#include "config/config.hpp"

namespace torl::actors {

struct RewardSetup {
  config::RewardConfig reward;
  const RunClock* clock = nullptr;
  TraceRecorder* trace = nullptr;  // may be null
};

struct RewardState {
  static inline const char* name = "reward";
  RewardSetup setup;
};

RewardApi::behavior_type reward_actor(RewardApi::stateful_pointer<RewardState> self, RewardSetup setup);

}  // namespace torl::actors
