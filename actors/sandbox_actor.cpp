#include "actors/sandbox_actor.hpp"

namespace torl::actors {

SandboxApi::behavior_type sandbox_actor(SandboxApi::stateful_pointer<SandboxState> self, SandboxSetup setup) {
  self->state.setup = setup;
  self->state.inbox->actor = self;
  self->attach_functor([inbox = self->state.inbox] {
    std::lock_guard lock(inbox->mutex);
    inbox->actor = nullptr;
  });
  return {
      [self](exec_atom, std::string& code) -> caf::typed_response_promise<sandbox::ExecutionResult> {
        SandboxState& s = self->state;
        auto promise = self->make_response_promise<sandbox::ExecutionResult>();
        const uint64_t ticket = s.next_ticket++;
        s.waiting.emplace(ticket, promise);
        s.setup.runner->submit(std::move(code), [inbox = s.inbox, ticket](sandbox::ExecutionResult result) {
          std::lock_guard lock(inbox->mutex);
          if (inbox->actor) caf::anon_send(inbox->actor, exec_done_atom::value, ticket, std::move(result));
        });
        return promise;
      },
      [self](exec_done_atom, uint64_t ticket, sandbox::ExecutionResult& result) {
        SandboxState& s = self->state;
        auto it = s.waiting.find(ticket);
        if (it == s.waiting.end()) return;
        if (s.setup.trace) s.setup.trace->message("sandbox", "interceptor", "result", -1, result.stdout_text.size() + result.stderr_text.size());
        it->second.deliver(std::move(result));
        s.waiting.erase(it);
      },
  };
}

}  // namespace torl::actors
