#include "actors/interceptor_actor.hpp"

#include "common/log.hpp"
#include "sandbox/protocol.hpp"

namespace torl::actors {
namespace {

using Self = InterceptorApi::stateful_pointer<InterceptorState>;

void act(Self self, int64_t id, Decision decision);

void trace_message(Self self, std::string_view to, std::string_view type, int64_t id, size_t bytes) {
  if (self->state.setup.trace) self->state.setup.trace->message("interceptor", to, type, id, bytes);
}

void send_finished(Self self, Trajectory trajectory) {
  self->state.setup.metrics->on_trajectory_finished();
  trace_message(self, "driver", "finished", trajectory.id(), trajectory.response.size() * 13 + trajectory.text.size());
  self->send(self->state.setup.driver, finished_atom::value, std::move(trajectory));
}

// The sandbox answered (or did not, in time): record the call and continue the trajectory.
void on_result(Self self, int64_t id, std::string code, sandbox::ExecutionResult result, double started_ms) {
  InterceptorState& s = self->state;
  auto it = s.live.find(id);
  if (it == s.live.end()) return;
  const double latency = s.setup.metrics->clock().now_ms() - started_ms;
  s.setup.metrics->on_tool_call_finished(latency, result.queue_ms, result.status != sandbox::ExecutionStatus::kOk);
  const int index = static_cast<int>(it->second.trajectory.tool_calls.size());
  if (result.status == sandbox::ExecutionStatus::kSandboxError) {
    // The model sees only kSandboxFaultObservation; the cause goes to the log (1st, 10th, 100th, ...
    // fault: a sandbox that is down does not flood it) and stays in the trajectory's tool call.
    const uint64_t n = ++s.sandbox_faults;
    uint64_t power = 1;
    while (power * 10 <= n) power *= 10;
    if (n == power) {
      TORL_LOG(kWarn) << "sandbox fault " << n << " (trajectory " << id << ", call " << index + 1
                      << "; the model is shown \"" << sandbox::kSandboxFaultObservation << "\"): " << result.stderr_text;
    }
  }
  if (s.setup.trace) s.setup.trace->tool_call(id, index, started_ms, sandbox::status_name(result.status));
  act(self, id, s.loop->on_result(it->second.trajectory, std::move(code), std::move(result), latency));
}

void act(Self self, int64_t id, Decision decision) {
  InterceptorState& s = self->state;
  InterceptorState::Live& live = s.live.at(id);
  switch (decision.kind) {
    case Decision::Kind::kExecute: {
      s.setup.metrics->on_tool_call_started();
      const double started = s.setup.metrics->clock().now_ms();
      trace_message(self, "sandbox", "exec", id, decision.code.size());
      const auto timeout = s.setup.sandbox_timeout;
      self->request(s.setup.sandbox, timeout, exec_atom::value, decision.code)
          .then(
              [self, id, code = decision.code, started](sandbox::ExecutionResult& result) {
                on_result(self, id, code, std::move(result), started);
              },
              [self, id, code = decision.code, started, timeout](caf::error& error) {
                on_result(self, id, code,
                          sandbox::sandbox_error("no result from the sandbox within " + std::to_string(timeout.count()) +
                                                 " ms (" + caf::to_string(error) + ")"),
                          started);
              });
      return;
    }
    case Decision::Kind::kContinue: {
      trace_message(self, live.generator_label, "resume", id, decision.tokens.size() * 4);
      self->send(live.generator, resume_atom::value,
                 ResumeCommand{id, decision.drop, std::move(decision.tokens), decision.stop_strings, decision.max_new_tokens});
      return;
    }
    case Decision::Kind::kFinish: {
      trace_message(self, live.generator_label, "release", id, 8);
      self->send(live.generator, release_atom::value, id);
      Trajectory trajectory = std::move(live.trajectory);
      s.live.erase(id);
      trajectory.finished_ms = s.setup.metrics->clock().now_ms();
      trace_message(self, "reward", "score", id, trajectory.text.size());
      self->request(s.setup.reward, s.setup.reward_timeout, score_atom::value, trajectory)
          .then([self](Trajectory& scored) { send_finished(self, std::move(scored)); },
                [self, trajectory](caf::error& error) mutable {
                  trajectory.error = "not scored: " + caf::to_string(error);
                  send_finished(self, std::move(trajectory));
                });
      return;
    }
  }
}

}  // namespace

InterceptorApi::behavior_type interceptor_actor(Self self, InterceptorSetup setup) {
  self->state.setup = std::move(setup);
  self->state.loop = std::make_unique<ToolLoop>(self->state.setup.rules, *self->state.setup.tokenizer);
  return {
      [self](begin_atom, RolloutJob& job) {
        InterceptorState& s = self->state;
        const int64_t id = job.id;
        InterceptorState::Live live;
        live.trajectory.job = std::move(job);
        live.trajectory.started_ms = s.setup.metrics->clock().now_ms();
        live.generator = caf::actor_cast<GeneratorApi>(self->current_sender());
        live.generator_label = "generator-" + std::to_string(live.trajectory.job.generator);
        s.live[id] = std::move(live);
      },
      [self](segment_atom, Segment& segment) {
        InterceptorState& s = self->state;
        auto it = s.live.find(segment.id);
        if (it == s.live.end()) return;  // a bug upstream; nothing to attach it to
        const double start = s.setup.metrics->clock().now_ms();
        const int void_calls = it->second.trajectory.void_calls;
        Decision decision = s.loop->on_segment(it->second.trajectory, segment);
        if (it->second.trajectory.void_calls > void_calls) s.setup.metrics->on_void_call();
        if (s.setup.trace) s.setup.trace->busy("interceptor", "segment", start, segment.id);
        act(self, segment.id, std::move(decision));
      },
  };
}

}  // namespace torl::actors
