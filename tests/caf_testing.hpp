// An actor system under CAF's deterministic test scheduler, for tests of actors: nothing runs until
// the test calls run() (or run_once(), trigger_timeouts()) on its coordinator. The config lives as long
// as the system: CAF 0.17's actor_system keeps a reference to it (a config destroyed first made the
// scheduler read freed memory: SIGFPE in some runs). Not movable; construct it in place.
#pragma once

#include <memory>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scheduler/test_coordinator.hpp>

namespace torl::testing {

struct DeterministicActors {
  DeterministicActors() {
    cfg.set("scheduler.policy", caf::atom("testing"));
    cfg.set("logger.verbosity", caf::atom("quiet"));
    cfg.set("logger.file-verbosity", caf::atom("quiet"));
    system = std::make_unique<caf::actor_system>(cfg);
    sched = &dynamic_cast<caf::scheduler::test_coordinator&>(system->scheduler());
  }
  DeterministicActors(const DeterministicActors&) = delete;
  DeterministicActors& operator=(const DeterministicActors&) = delete;

  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> system;
  caf::scheduler::test_coordinator* sched = nullptr;
};

}  // namespace torl::testing
