// TrainingRun: the control of a training run, apart from what it controls. It decides which step's
// prompts may enter the pipeline (step k once the weights are at least version k - max_staleness),
// which evals are due (at the start, every eval_every steps, at the end, each at the weights of its
// step), and when the run ends: every step done and every eval finished; a failure (the first one
// reported ends it); or a stop: a process on its own stops at once (the rollouts of steps in flight
// are dropped: a step can take hours), ranks of a data-parallel run stop together once they agreed,
// after the steps in flight. Its state is explicit (RunState) and its effects go through RunActions,
// so the rules are tested without a model (tests/actors/training_run_test.cpp); `torl train` gives
// it the pipeline and the learner.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <set>

#include "common/status.hpp"

namespace torl::actors {

struct RunPlan {
  int64_t first_step = 0;  // steps done before (a resumed run)
  int64_t steps = 0;       // the run ends when this many are done
  int64_t max_staleness = 0;
  int64_t eval_every = 0;  // 0: no evals
  bool launched = false;   // one rank of a data-parallel run: a stop waits for the others' agreement
  std::chrono::milliseconds quiet{30000};  // RunActions::in_flight after this long without an event
};

// What the run does to the world. Called on run()'s thread, without the run's lock held (so they may
// report events back at once).
class RunActions {
 public:
  virtual ~RunActions() = default;
  virtual void submit_step(int64_t step) = 0;  // step `step` (0-based) of the training data
  virtual void submit_eval(int64_t step) = 0;  // the eval sets at the weights after `step` steps
  // Nothing happened for plan.quiet while step done + 1 was in flight (`submitted` steps submitted).
  virtual void in_flight(int64_t done, int64_t submitted) {}
  // The run saw a stop request (once).
  virtual void stop_requested() {}
};

// RunActions from functions (any may be empty but the two submits).
struct FunctionActions : RunActions {
  std::function<void(int64_t)> step, eval;
  std::function<void(int64_t, int64_t)> quiet;
  std::function<void()> stop;
  void submit_step(int64_t s) override { step(s); }
  void submit_eval(int64_t s) override { eval(s); }
  void in_flight(int64_t done, int64_t submitted) override {
    if (quiet) quiet(done, submitted);
  }
  void stop_requested() override {
    if (stop) stop();
  }
};

struct RunState {
  int64_t submitted = 0;     // steps whose prompts went into the pipeline
  int64_t done = 0;          // steps the learner finished
  int64_t checkpointed = 0;  // the newest checkpoint's step
  std::set<int64_t> evals_in_flight;
  int stop_signal = 0;       // SIGINT/SIGTERM received by this process; 0 none
  bool stop_agreed = false;  // the ranks agreed to stop after step `done`
  Status failure;            // the first failure
};

class TrainingRun {
 public:
  TrainingRun(RunPlan plan, RunActions& actions);

  // ---- events, from any thread ----
  // The learner finished `step` (1-based: steps done); `checkpointed`: a checkpoint of it was
  // written; `stop_agreed`: the ranks agreed to stop after it.
  void step_done(int64_t step, bool checkpointed, bool stop_agreed);
  void eval_done(int64_t step);
  void fail(Status failure);
  void request_stop(int signal);

  // Runs the loop on the caller's thread until the run ends; returns the state it ended in.
  RunState run();
  RunState state() const;
  // Blocks until a stop was requested or `limit` passed (a test hook's wait).
  void wait_for_stop(std::chrono::milliseconds limit);

 private:
  bool stopping() const;  // under mutex_
  bool eval_due(int64_t step) const;

  const RunPlan plan_;
  RunActions& actions_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  RunState state_;           // guarded by mutex_
  int64_t eval_checked_ = 0; // steps whose eval was submitted or not due; guarded by mutex_
};

}  // namespace torl::actors
