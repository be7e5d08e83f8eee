// torl with test hooks, for the scripts in tests/tools: the same program as build/torl, plus what the
// TORL_TEST_* variables ask for (the torl binary reads none of them). Sweep children and --nproc ranks
// run this same binary (/proc/self/exe), so they inherit the hooks with the environment.
//   TORL_TEST_KILL_AFTER_STEP=N         SIGKILL (a crash) right after step N's line
//   TORL_TEST_TERM_AFTER_STEP=N         SIGTERM twice (a supervisor and a launcher both deliver it)
//   TORL_TEST_TERM_PARENT_AFTER_STEP=N  SIGTERM to the parent (a sweep being stopped), then wait up to
//                                       30 s until the parent has passed the stop on to this process
//   TORL_TEST_FAULT=learner:N           the learner throws after step N
//   TORL_TEST_FAULT=generator:N         the generator's Nth forward pass throws
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <string>

#include "model/device.hpp"
#include "tools/commands.hpp"
#include "tools/train_hooks.hpp"

namespace {

using torl::model::CausalLm;

int64_t step_of(const char* name) {
  const char* value = std::getenv(name);
  return value ? std::atoll(value) : -1;
}

// TORL_TEST_FAULT=ACTOR:N: N, or -1 when it names another actor or is unset.
int64_t fault_of(const std::string& actor) {
  const char* value = std::getenv("TORL_TEST_FAULT");
  const std::string prefix = actor + ":";
  if (value == nullptr || std::string(value).rfind(prefix, 0) != 0) return -1;
  return std::atoll(value + prefix.size());
}

class FaultyLm final : public CausalLm {
 public:
  FaultyLm(CausalLm& inner, int64_t fail_at) : inner_(inner), fail_at_(fail_at) {}
  int64_t max_slots() const override { return inner_.max_slots(); }
  int64_t max_length() const override { return inner_.max_length(); }
  torch::Tensor extend(const std::vector<int64_t>& slots, const std::vector<std::vector<int64_t>>& tokens) override {
    if (++calls_ == fail_at_) throw std::runtime_error("injected fault (TORL_TEST_FAULT) in forward pass " + std::to_string(calls_));
    return inner_.extend(slots, tokens);
  }
  void clear(int64_t slot) override { inner_.clear(slot); }
  void truncate(int64_t slot, int64_t length) override { inner_.truncate(slot, length); }
  bool release_cache() override { return inner_.release_cache(); }

 private:
  CausalLm& inner_;
  int64_t fail_at_;
  int64_t calls_ = 0;
};

torl::actors::TrainingHooks hooks_from_environment() {
  const int64_t kill_after = step_of("TORL_TEST_KILL_AFTER_STEP");
  const int64_t term_after = step_of("TORL_TEST_TERM_AFTER_STEP");
  const int64_t term_parent_after = step_of("TORL_TEST_TERM_PARENT_AFTER_STEP");
  const int64_t learner_fault = fault_of("learner");
  const int64_t generator_fault = fault_of("generator");
  torl::actors::TrainingHooks hooks;
  hooks.after_step = [=](int64_t step, const std::function<void(std::chrono::seconds)>& wait_for_stop) {
    if (step == kill_after) ::raise(SIGKILL);
    if (step == learner_fault) throw std::runtime_error("injected fault (TORL_TEST_FAULT) after step " + std::to_string(step));
    if (step == term_after) {
      ::raise(SIGTERM);
      ::raise(SIGTERM);
    }
    if (step == term_parent_after) {
      ::kill(::getppid(), SIGTERM);
      wait_for_stop(std::chrono::seconds(30));
    }
  };
  if (generator_fault > 0) {
    hooks.wrap_generator_model = [=](CausalLm& lm) { return std::make_unique<FaultyLm>(lm, generator_fault); };
  }
  return hooks;
}

}  // namespace

int main(int argc, char** argv) {
  torl::model::use_available_cpus();
  torl::model::keep_freed_memory();
  torl::tools::set_train_hooks(hooks_from_environment());
  return torl::tools::torl_main(torl::tools::Args(argv + 1, argv + argc), std::cout, std::cerr);
}
