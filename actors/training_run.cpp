#include "actors/training_run.hpp"

namespace torl::actors {

TrainingRun::TrainingRun(RunPlan plan, RunActions& actions) : plan_(plan), actions_(actions) {
  state_.submitted = state_.done = state_.checkpointed = plan_.first_step;
  eval_checked_ = plan_.first_step == 0 ? -1 : plan_.first_step;  // a resumed run's start was evaluated before
}

void TrainingRun::step_done(int64_t step, bool checkpointed, bool stop_agreed) {
  std::lock_guard lock(mutex_);
  state_.done = step;
  if (checkpointed) state_.checkpointed = step;
  state_.stop_agreed = state_.stop_agreed || stop_agreed;
  changed_.notify_all();
}

void TrainingRun::eval_done(int64_t step) {
  std::lock_guard lock(mutex_);
  state_.evals_in_flight.erase(step);
  changed_.notify_all();
}

void TrainingRun::fail(Status failure) {
  std::lock_guard lock(mutex_);
  if (state_.failure.ok()) state_.failure = std::move(failure);
  changed_.notify_all();
}

void TrainingRun::request_stop(int signal) {
  std::lock_guard lock(mutex_);
  state_.stop_signal = signal;
  changed_.notify_all();
}

RunState TrainingRun::state() const {
  std::lock_guard lock(mutex_);
  return state_;
}

void TrainingRun::wait_for_stop(std::chrono::milliseconds limit) {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, limit, [&] { return state_.stop_signal != 0; });
}

bool TrainingRun::stopping() const { return state_.stop_agreed || (!plan_.launched && state_.stop_signal != 0); }

bool TrainingRun::eval_due(int64_t step) const {
  return plan_.eval_every > 0 && (step == 0 || step == plan_.steps || step % plan_.eval_every == 0);
}

RunState TrainingRun::run() {
  std::unique_lock lock(mutex_);
  bool stop_seen = false;
  while (true) {
    // What this pass saw first: an event that comes while the pass submits (with the lock released)
    // then wakes the wait below at once instead of being missed.
    const RunState seen = state_;
    if (state_.stop_signal != 0 && !stop_seen) {
      stop_seen = true;
      lock.unlock();
      actions_.stop_requested();
      lock.lock();
    }
    // the evals due once a step is done, at the weights of that step
    while (!stopping() && eval_checked_ < state_.done) {
      const int64_t step = ++eval_checked_;
      if (!eval_due(step)) continue;
      state_.evals_in_flight.insert(step);
      lock.unlock();
      actions_.submit_eval(step);
      lock.lock();
    }
    // step k's prompts once the weights are at least version k - max_staleness
    while (!stopping() && state_.submitted < plan_.steps && state_.submitted <= state_.done + plan_.max_staleness) {
      const int64_t step = state_.submitted++;
      lock.unlock();
      actions_.submit_step(step);
      lock.lock();
    }
    if (!state_.failure.ok()) break;
    // every step done and every eval due submitted (a step may have finished during this pass) and back
    if (state_.done >= plan_.steps && eval_checked_ >= state_.done && state_.evals_in_flight.empty()) break;
    // Unfinished evals are dropped; so are the rollouts of steps in flight in one process. Ranks of a
    // launched run stop together after their steps in flight.
    if (stopping() && (state_.done >= state_.submitted || !plan_.launched)) break;
    const auto woken = [&] {
      return state_.done != seen.done || state_.evals_in_flight != seen.evals_in_flight || !state_.failure.ok() ||
             state_.stop_signal != seen.stop_signal || state_.stop_agreed != seen.stop_agreed;
    };
    if (!changed_.wait_for(lock, plan_.quiet, woken) && state_.done < state_.submitted) {
      const int64_t done = state_.done, submitted = state_.submitted;
      lock.unlock();
      actions_.in_flight(done, submitted);
      lock.lock();
    }
  }
  return state_;
}

}  // namespace torl::actors
