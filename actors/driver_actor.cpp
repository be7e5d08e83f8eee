#include "actors/driver_actor.hpp"

#include <algorithm>

namespace torl::actors {
namespace {

using Self = DriverApi::stateful_pointer<DriverState>;

// Hands queued jobs to generators with credit, in address order.
void dispatch(Self self) {
  DriverState& s = self->state;
  for (auto& [address, entry] : s.credit) {
    auto& [generator, credit] = entry;
    const int64_t n = std::min<int64_t>(credit, static_cast<int64_t>(s.queue.size()));
    if (n <= 0) continue;
    std::vector<RolloutJob> jobs(std::make_move_iterator(s.queue.begin()), std::make_move_iterator(s.queue.begin() + n));
    s.queue.erase(s.queue.begin(), s.queue.begin() + n);
    credit -= n;
    if (s.setup.trace) s.setup.trace->message("driver", "generator", "jobs", -1, static_cast<size_t>(n) * 512);
    self->send(generator, jobs_atom::value, std::move(jobs));
  }
}

}  // namespace

DriverApi::behavior_type driver_actor(Self self, DriverSetup setup) {
  self->state.setup = std::move(setup);
  return {
      [self](jobs_atom, std::vector<RolloutJob>& jobs) {
        for (RolloutJob& job : jobs) self->state.queue.push_back(std::move(job));
        dispatch(self);
      },
      [self](credit_atom, int64_t n) {
        auto generator = caf::actor_cast<GeneratorApi>(self->current_sender());
        auto& entry = self->state.credit[generator.address()];
        entry.first = generator;
        entry.second += n;
        dispatch(self);
      },
      [self](finished_atom, Trajectory& trajectory) {
        if (self->state.setup.trace) self->state.setup.trace->trajectory(trajectory);
        self->state.setup.on_finished(std::move(trajectory));
      },
  };
}

}  // namespace torl::actors
