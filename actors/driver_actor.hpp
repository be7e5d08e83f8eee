// driver_actor: holds the jobs not yet handed out and gives them to generators as they ask (credits),
// so the queue of unstarted work lives in one place and no generator gets more than it can admit.
// Finished trajectories are recorded (trace) and passed to `on_finished`, on this actor's thread.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <utility>

#include "actors/messages.hpp"
#include "actors/metrics.hpp"
#include "actors/trace.hpp"

namespace torl::actors {

struct DriverSetup {
  std::function<void(Trajectory)> on_finished;  // must not block
  TraceRecorder* trace = nullptr;               // may be null
};

struct DriverState {
  static inline const char* name = "driver";
  DriverSetup setup;
  std::deque<RolloutJob> queue;
  std::map<caf::actor_addr, std::pair<GeneratorApi, int64_t>> credit;  // generator -> (handle, jobs it can take)
};

DriverApi::behavior_type driver_actor(DriverApi::stateful_pointer<DriverState> self, DriverSetup setup);

}  // namespace torl::actors
