// What a training run needs in memory on each device, from the model's shape and the run's settings,
// without loading weights: `torl train CONFIG --plan` prints it, and `torl train bench` sets it beside
// the memory a step really took. The counts follow what the code keeps (see memory_plan.cpp): the
// policy, its gradients, the float32 masters and AdamW state, the generators' copy and KV cache, the
// activations autograd saves for the largest micro-batch, and the vocabulary logits of one chunk.
// Allocator slack and the runtime (CUDA context, LibTorch) are not included.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "model/qwen2.hpp"

namespace torl::model {

struct MemoryPlanInput {
  Qwen2Config model;
  torch::ScalarType dtype = torch::kFloat32;  // model.dtype: weights, activations
  bool master_copy = false;                   // float32 master weights under a 16-bit policy
  bool gradient_checkpointing = false;
  bool reference = false;                     // a frozen reference model (algorithm.kl_coef > 0)
  int64_t sequences = 1;                      // the largest micro-batch: sequences x length tokens
  int64_t length = 1;
  int64_t logits_chunk = 0;                   // train.logits_chunk; 0 = every position at once
  int64_t generators = 0;                     // the generators' weights and KV caches on this device
  int64_t cache_slots = 0;                    // KV cache rows per generator
  int64_t cache_length = 0;                   // tokens per row
  bool separate = false;     // rollout.placement separate: the generators on a device of their own
  bool cache_freed = false;  // rollout.cache_during_update free: no KV cache while the update runs
};

struct MemoryItem {
  std::string name;
  int64_t bytes = 0;
  std::string how;  // how it was counted
};

struct MemoryPlan {
  std::vector<MemoryItem> items;
  int64_t total() const;
  int64_t bytes_of(const std::string& name) const;  // 0 when absent
};

// Parameters of a model of this shape (the embedding counted once when tied).
int64_t parameter_count(const Qwen2Config& config);

// The learner's device (with colocated generators, theirs too).
MemoryPlan plan_memory(const MemoryPlanInput& input);
// The generators' device under separate placement: their weights, the version arriving, the KV cache.
MemoryPlan plan_generator_memory(const MemoryPlanInput& input);

// "12.34 GiB" (three decimals below 0.1 GiB), as the plan's table writes sizes.
std::string format_gib(int64_t bytes);

// Bytes this machine can still give (MemAvailable of /proc/meminfo), or -1 where it is not known.
int64_t available_host_memory();

// The plan as a table (GiB per item, the total); with device_gib > 0 whether it fits and, when it does
// not, which settings would shrink the largest items.
std::string format_memory_plan(const MemoryPlan& plan, const MemoryPlanInput& input, double device_gib);

}  // namespace torl::model
