// What a test may inject into `torl train`: a crash, a stop or a fault at a chosen step. The torl binary
// never sets these; tests/tools/torl_hooked.cpp is a torl that sets them from TORL_TEST_* variables, so
// that an environment variable set by accident can never make a real run kill itself or its parent.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include "model/generation_engine.hpp"

namespace torl::tools {

struct TrainHooks {
  // Called on the learner's thread after step N's metrics line (and its checkpoint when one was due). It
  // may raise a signal, throw (the learner fails), or call wait_for_stop(limit), which returns once this
  // process was asked to stop or after the limit.
  std::function<void(int64_t step, const std::function<void(std::chrono::seconds)>& wait_for_stop)> after_step;
  // Wraps the generator's model (e.g. in one whose Nth forward throws); the result must outlive the run.
  std::function<std::unique_ptr<model::CausalLm>(model::CausalLm&)> wrap_generator_model;
};

// Process-wide; set before torl_main runs. Nothing is set by default.
void set_train_hooks(TrainHooks hooks);

}  // namespace torl::tools
