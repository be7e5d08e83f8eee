// The learner's memory and speed at long sequences: one policy update of a random model (4 layers,
// d=256, 4 heads / 2 kv heads, the given vocabulary) on `sequences` x `length` tokens, with gradient
// checkpointing and logits chunking off or on, its peak resident memory beside plan_memory's estimate.
// What `torl train bench` prints. CPU only: the peak is the process's resident set (Linux VmHWM, reset
// before each run), less what it held before the model was made.
#pragma once

#include <cstdint>
#include <vector>

#include "common/status.hpp"
#include "model/memory_plan.hpp"

namespace torl::model {

struct TrainBenchShape {
  int64_t sequences = 8;
  int64_t length = 2048;      // tokens per sequence: a 64-token prompt and the response
  int64_t vocabulary = 32768;
  int steps = 2;              // updates per run; the first also allocates the AdamW state
};

struct TrainBenchRun {
  bool checkpointing = false;
  int64_t logits_chunk = 0;
  double step_s = 0;           // the last update's wall time
  int64_t peak_bytes = 0;      // peak resident memory above the run's start
  int64_t planned_bytes = 0;   // plan_memory's total for the same settings
};

// One run (a fresh model and trainer). Errors: not on Linux (no /proc/self/status), the update failed.
Expected<TrainBenchRun> bench_train_step(const TrainBenchShape& shape, bool checkpointing, int64_t logits_chunk);

}  // namespace torl::model
