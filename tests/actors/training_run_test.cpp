// The training run's control (actors/training_run.hpp) without a model: a scripted learner answers
// the run's submissions from the test's thread, so every rule is checked in a few milliseconds.
#include "actors/training_run.hpp"

#include <doctest/doctest.h>

#include <csignal>
#include <thread>
#include <vector>

namespace torl::actors {
namespace {

// Records what the run submitted, with the run's state at that moment, and lets the test wait for it.
class Recorder : public RunActions {
 public:
  struct Submission {
    bool eval = false;
    int64_t step = 0;
    int64_t done_then = 0;  // steps the learner had finished when it was submitted
  };
  TrainingRun* run = nullptr;

  void submit_step(int64_t step) override { add({false, step, run->state().done}); }
  void submit_eval(int64_t step) override { add({true, step, run->state().done}); }

  // Waits until `n` submissions (of steps alone, with `steps_only`) were made or the run ended.
  std::vector<Submission> wait_for(size_t n, bool steps_only = false) {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] {
      size_t count = 0;
      for (const auto& s : submissions_) count += steps_only && s.eval ? 0 : 1;
      return count >= n || ended_;
    });
    return submissions_;
  }
  std::vector<Submission> all() {
    std::lock_guard lock(mutex_);
    return submissions_;
  }
  void end() {
    std::lock_guard lock(mutex_);
    ended_ = true;
    changed_.notify_all();
  }

 private:
  void add(Submission s) {
    std::lock_guard lock(mutex_);
    submissions_.push_back(s);
    changed_.notify_all();
  }
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Submission> submissions_;
  bool ended_ = false;
};

// run() on a thread of its own; the result once it returned.
struct Running {
  Running(RunPlan plan, Recorder& recorder) : run(plan, recorder) {
    recorder.run = &run;
    thread = std::thread([this, &recorder] {
      result = run.run();
      recorder.end();
    });
  }
  RunState finish() {
    thread.join();
    return result;
  }
  TrainingRun run;
  RunState result;
  std::thread thread;
};

std::vector<int64_t> steps_of(const std::vector<Recorder::Submission>& all, bool eval) {
  std::vector<int64_t> out;
  for (const auto& s : all) {
    if (s.eval == eval) out.push_back(s.step);
  }
  return out;
}

TEST_SUITE("actors") {
  TEST_CASE("a step's prompts go in once the weights are at most max_staleness versions behind") {
    for (const int64_t staleness : {0, 1, 2}) {
      CAPTURE(staleness);
      Recorder recorder;
      Running running({.steps = 5, .max_staleness = staleness}, recorder);
      for (int64_t done = 1; done <= 5; ++done) {
        // before step `done` is reported, steps 0 .. done - 1 + staleness are in (as many as there are)
        const auto so_far = recorder.wait_for(static_cast<size_t>(std::min<int64_t>(5, done + staleness)));
        CHECK(steps_of(so_far, false).size() == static_cast<size_t>(std::min<int64_t>(5, done + staleness)));
        running.run.step_done(done, false, false);
      }
      const RunState end = running.finish();
      CHECK(end.done == 5);
      CHECK(end.failure.ok());
      const auto all = recorder.all();
      CHECK(steps_of(all, false) == std::vector<int64_t>{0, 1, 2, 3, 4});
      for (const auto& s : all) {
        CAPTURE(s.step);
        CHECK(s.step <= s.done_then + staleness);  // the gate, at the moment of each submission
      }
    }
  }

  TEST_CASE("evals go in at the start, every eval_every steps and at the end, and the run waits for them") {
    Recorder recorder;
    Running running({.steps = 5, .eval_every = 2}, recorder);
    for (int64_t done = 1; done <= 5; ++done) {
      recorder.wait_for(static_cast<size_t>(done), /*steps_only=*/true);
      running.run.step_done(done, false, false);
    }
    // steps 0, 2, 4 and 5 (the end) are due; none has finished, so the run is still going
    const auto submitted = recorder.wait_for(5 + 4);
    CHECK(steps_of(submitted, true) == std::vector<int64_t>{0, 2, 4, 5});
    for (const auto& s : submitted) {
      if (s.eval) CHECK(s.done_then >= s.step);  // at the weights of its step
    }
    CHECK(running.run.state().evals_in_flight.size() == 4);
    for (const int64_t step : {0, 2, 4, 5}) running.run.eval_done(step);
    const RunState end = running.finish();
    CHECK(end.evals_in_flight.empty());
    CHECK(end.done == 5);
  }

  TEST_CASE("a resumed run starts after its checkpoint and does not evaluate its start again") {
    Recorder recorder;
    Running running({.first_step = 2, .steps = 4, .eval_every = 2}, recorder);
    recorder.wait_for(1);
    running.run.step_done(3, false, false);
    recorder.wait_for(2);
    running.run.step_done(4, true, false);
    const auto submitted = recorder.wait_for(3);
    CHECK(steps_of(submitted, false) == std::vector<int64_t>{2, 3});
    CHECK(steps_of(submitted, true) == std::vector<int64_t>{4});
    running.run.eval_done(4);
    const RunState end = running.finish();
    CHECK(end.checkpointed == 4);
  }

  TEST_CASE("a stop ends one process at once, and the ranks of a launched run after their steps in flight") {
    SUBCASE("one process: the step in flight is dropped") {
      Recorder recorder;
      Running running({.steps = 10, .max_staleness = 1}, recorder);
      recorder.wait_for(2);
      running.run.request_stop(SIGTERM);
      const RunState end = running.finish();
      CHECK(end.done == 0);
      CHECK(end.stop_signal == SIGTERM);
      CHECK(steps_of(recorder.all(), false).size() == 2);  // nothing after the stop
    }
    SUBCASE("launched: a signal alone changes nothing until the ranks agree; then the steps in flight finish") {
      Recorder recorder;
      Running running({.steps = 10, .max_staleness = 1, .launched = true}, recorder);
      recorder.wait_for(2);
      running.run.request_stop(SIGTERM);
      running.run.step_done(1, false, false);      // not agreed yet (the all-reduce of step 1 had no stop)
      recorder.wait_for(3);                        // so step 2 still goes in
      running.run.step_done(2, false, true);       // agreed at step 2; step 3 is not submitted
      running.run.step_done(3, true, true);        // the step in flight finishes
      const RunState end = running.finish();
      CHECK(end.done == 3);
      CHECK(end.checkpointed == 3);
      CHECK(steps_of(recorder.all(), false) == std::vector<int64_t>{0, 1, 2});
    }
  }

  TEST_CASE("the first failure ends the run, with its cause, whatever is in flight") {
    Recorder recorder;
    Running running({.steps = 10, .max_staleness = 1, .eval_every = 1}, recorder);
    recorder.wait_for(3);  // eval 0, steps 0 and 1
    running.run.fail(Status(StatusCode::kInternal, "the generator actor failed: out of memory"));
    running.run.fail(Status(StatusCode::kInternal, "a later one"));
    const RunState end = running.finish();
    CHECK(end.failure.message() == "the generator actor failed: out of memory");
    CHECK(end.done == 0);
  }

  TEST_CASE("a quiet spell while a step is in flight is reported, with how far the run is") {
    struct Quiet : Recorder {
      void in_flight(int64_t done, int64_t submitted) override {
        CHECK(done == 0);
        CHECK(submitted == 1);
        run->fail(Status(StatusCode::kTimeout, "reported"));  // ends the test's run
      }
    } recorder;
    Running running({.steps = 3, .quiet = std::chrono::milliseconds(1)}, recorder);
    CHECK(running.finish().failure.message() == "reported");
  }
}

}  // namespace
}  // namespace torl::actors
