// Faults in the actors: an exception that escapes an actor's message handler must end the run with
// the actor named and its error, not leave the others waiting for a reply that never comes.
#pragma once

#include <exception>
#include <functional>
#include <string>
#include <utility>

#include <caf/all.hpp>

namespace torl::actors {

// Hears (actor, what) once for each actor that died of an exception, on that actor's thread; must not
// block. Empty: CAF's default (the actor dies, its error printed).
using FaultHandler = std::function<void(const std::string& actor, const std::string& what)>;

// Spawns `fun(self, setup)` (an actor function) so that an exception escaping a handler of the actor
// calls on_fault(name, what()) and ends the actor with that error. Detached: on a thread of its own.
template <class Behavior, class Self, class Setup>
auto spawn_reporting(caf::actor_system& system, bool detached, const std::string& name, FaultHandler on_fault,
                     Behavior (*fun)(Self, Setup), Setup setup) {
  auto start = [name, on_fault = std::move(on_fault), fun](Self self, Setup s) -> Behavior {
    if (on_fault) {
      self->set_exception_handler([name, on_fault](caf::scheduled_actor*, std::exception_ptr& thrown) {
        std::string what = "an exception that is not a std::exception";
        try {
          std::rethrow_exception(thrown);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        on_fault(name, what);
        return caf::make_error(caf::sec::runtime_error, what);
      });
    }
    return fun(self, std::move(s));
  };
  return detached ? system.spawn<caf::detached>(start, std::move(setup)) : system.spawn(start, std::move(setup));
}

}  // namespace torl::actors
