#include "actors/generator_actor.hpp"

#include <algorithm>

namespace torl::actors {
namespace {

using Self = GeneratorApi::stateful_pointer<GeneratorState>;

bool rounds(const GeneratorState& s) { return s.setup.mode == config::RolloutMode::kRounds; }
int64_t live(const GeneratorState& s) { return s.setup.model->max_slots() - s.engine->free_slots(); }
// New prompts that may start now: a free slot and a place in the decode batch each.
int64_t room(const GeneratorState& s) {
  return std::min(s.engine->free_slots(), s.setup.max_running - s.engine->running());
}
void hand_over(Self self);

void send_segment(Self self, Segment segment) {
  GeneratorState& s = self->state;
  if (s.setup.trace) s.setup.trace->message(s.label, "interceptor", "segment", segment.id, segment.tokens.size() * 12);
  self->send(s.setup.interceptor, segment_atom::value, std::move(segment));
}

// A trajectory that cannot go on (a prompt or tokens that do not fit): the interceptor finishes it
// with the error, so it is reported rather than lost.
void fail(Self self, int64_t id, std::string error) {
  GeneratorState& s = self->state;
  Segment segment = std::move(s.open[id]);
  segment.id = id;
  segment.stop = FinishReason::kError;
  segment.error = std::move(error);
  s.paused.insert(id);
  s.held.push_back(std::move(segment));
  hand_over(self);
}

// Asks the driver for as many jobs as can be admitted now (async), or for a whole batch once the
// previous one is gone (rounds).
void ask_for_work(Self self) {
  GeneratorState& s = self->state;
  int64_t want = 0;
  if (rounds(s)) {
    if (live(s) == 0 && s.queued.empty() && s.credit_out == 0) want = s.setup.model->max_slots();
  } else if (static_cast<int64_t>(s.paused.size()) < s.setup.max_pending) {
    // a batch's worth of jobs waits here beyond the free room, so that a freed slot is refilled at
    // once instead of after a round trip to the driver (which leaves the decode batch short)
    want = room(s) + s.setup.max_running - static_cast<int64_t>(s.queued.size()) - s.credit_out;
  }
  if (want <= 0) return;
  s.credit_out += want;
  if (s.setup.trace) s.setup.trace->message(s.label, "driver", "credit", -1, 8);
  self->send(s.setup.driver, credit_atom::value, want);
}

void admit(Self self) {
  GeneratorState& s = self->state;
  if (rounds(s) && live(s) > 0) return;
  while (!s.queued.empty() && room(s) > 0 &&
         (rounds(s) || static_cast<int64_t>(s.paused.size()) < s.setup.max_pending)) {
    RolloutJob job = std::move(s.queued.front());
    s.queued.pop_front();
    model::GenerationRequest request;
    request.id = job.id;
    request.prompt.assign(job.prompt.begin(), job.prompt.end());
    request.max_new_tokens = s.setup.max_response_tokens;
    request.sampling = job.sampling;
    request.seed = job.seed;
    request.stops = s.setup.stop_strings;
    request.eos_ids = s.setup.eos_ids;
    const int64_t id = job.id;
    job.generator = s.setup.index;
    if (s.setup.trace) s.setup.trace->message(s.label, "interceptor", "begin", id, job.prompt.size() * 4);
    self->send(s.setup.interceptor, begin_atom::value, std::move(job));
    s.open[id] = Segment{id, {}, {}, {}, FinishReason::kNone, {}};
    if (Status status = s.engine->admit(std::move(request)); !status.ok()) fail(self, id, status.message());
  }
}

// Sends held stops to the interceptor: async, while fewer than max_pending are with it; rounds, all
// of them once no sequence is running (the round is over).
void hand_over(Self self) {
  GeneratorState& s = self->state;
  if (rounds(s) && s.engine->running() > 0) return;
  size_t sent = 0;
  for (; sent < s.held.size(); ++sent) {
    const int64_t with_interceptor = static_cast<int64_t>(s.paused.size() - s.held.size() + sent);
    if (!rounds(s) && with_interceptor >= s.setup.max_pending) break;
    send_segment(self, std::move(s.held[sent]));
  }
  s.held.erase(s.held.begin(), s.held.begin() + static_cast<std::ptrdiff_t>(sent));
}

// Ends every message's work: the occupancy gauges, then the next decode step if there is one.
void schedule_step(Self self) {
  GeneratorState& s = self->state;
  s.setup.metrics->on_occupancy(s.setup.index, s.engine->running(), static_cast<int64_t>(s.queued.size()),
                                static_cast<int64_t>(s.paused.size() - s.held.size()),
                                static_cast<int64_t>(s.held.size()));
  // rounds: while stops of this round are with the interceptor, nothing decodes
  const bool waiting = rounds(s) && s.paused.size() > s.held.size();
  if (s.step_scheduled || waiting || s.engine->running() == 0) return;
  s.step_scheduled = true;
  self->send(self, step_atom::value);
}

void step(Self self) {
  GeneratorState& s = self->state;
  s.step_scheduled = false;
  if (s.engine->running() == 0) return;
  const double start = s.setup.metrics->clock().now_ms();
  const std::vector<model::GenerationUpdate> updates = s.engine->step();
  int64_t sampled = 0;
  for (const model::GenerationUpdate& update : updates) {
    Segment& segment = s.open[update.id];
    for (size_t i = 0; i < update.tokens.size(); ++i) {
      segment.tokens.push_back(static_cast<int32_t>(update.tokens[i]));
      segment.logprobs.push_back(static_cast<float>(update.logprobs[i]));
      segment.versions.push_back(s.version);
    }
    sampled += static_cast<int64_t>(update.tokens.size());
    if (update.stop == model::StopReason::kNone) continue;
    static constexpr FinishReason kReasons[] = {FinishReason::kNone, FinishReason::kStopString, FinishReason::kEos,
                                                FinishReason::kLength, FinishReason::kCacheFull};
    segment.stop = kReasons[static_cast<int>(update.stop)];
    Segment done = std::move(segment);
    s.open[update.id] = Segment{update.id, {}, {}, {}, FinishReason::kNone, {}};
    s.paused.insert(update.id);
    s.held.push_back(std::move(done));
  }
  s.setup.metrics->on_step(s.setup.index, s.setup.metrics->clock().now_ms() - start, sampled);
  if (s.setup.trace) s.setup.trace->busy(s.label, "decode step", start);
  hand_over(self);
  admit(self);  // a paused sequence left its place in the decode batch
  ask_for_work(self);
  schedule_step(self);
}

}  // namespace

GeneratorApi::behavior_type generator_actor(Self self, GeneratorSetup setup) {
  GeneratorState& s = self->state;
  s.setup = std::move(setup);
  s.label = "generator-" + std::to_string(s.setup.index);
  s.version = s.setup.first_version;
  s.engine = std::make_unique<model::GenerationEngine>(*s.setup.model, *s.setup.tokenizer);
  ask_for_work(self);
  return {
      [self](jobs_atom, std::vector<RolloutJob>& jobs) {
        GeneratorState& s = self->state;
        s.credit_out -= static_cast<int64_t>(jobs.size());
        for (RolloutJob& job : jobs) s.queued.push_back(std::move(job));
        admit(self);
        ask_for_work(self);
        schedule_step(self);
      },
      [self](resume_atom, ResumeCommand& command) {
        GeneratorState& s = self->state;
        s.paused.erase(command.id);
        const std::vector<int64_t> tokens(command.tokens.begin(), command.tokens.end());
        const Status status = s.engine->resume(command.id, tokens, {command.stop_strings, command.max_new_tokens, command.drop});
        if (!status.ok()) fail(self, command.id, "resuming: " + status.message());
        hand_over(self);
        admit(self);
        ask_for_work(self);
        schedule_step(self);
      },
      [self](release_atom, int64_t id) {
        GeneratorState& s = self->state;
        s.paused.erase(id);
        s.open.erase(id);
        s.engine->release(id);
        hand_over(self);
        admit(self);
        ask_for_work(self);
        schedule_step(self);
        // the last sequence gone and none waiting: the learner's update may have the cache's memory
        if (s.setup.free_cache_when_idle && live(s) == 0 && s.queued.empty() && s.setup.model->release_cache()) {
          s.setup.metrics->on_cache_released();
        }
      },
      [self](weights_atom, const WeightsUpdate& update) {
        GeneratorState& s = self->state;
        if (s.setup.weights) {
          torch::NoGradGuard no_grad;
          for (auto& [name, tensor] : s.setup.weights->named_parameters()) tensor.copy_(update.tensors->at(name));
        }
        s.version = update.version;
      },
      [self](step_atom) { step(self); },
  };
}

}  // namespace torl::actors
