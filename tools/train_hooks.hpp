// The hooks a test binary installs into `torl train` (actors::TrainingHooks). The torl binary never
// sets them; tests/tools/torl_hooked.cpp is a torl that sets them from TORL_TEST_* variables, so that
// an environment variable set by accident can never make a real run kill itself or its parent.
#pragma once

#include "actors/training_job.hpp"

namespace torl::tools {

// Process-wide; set before torl_main runs. Nothing is set by default.
void set_train_hooks(actors::TrainingHooks hooks);

}  // namespace torl::tools
