// Turning the model section's device and dtype into LibTorch values, and checking that the device
// exists on this machine. Called once at start by whoever builds the model (generator, learner).
#pragma once

#include <string>

#include <torch/torch.h>

#include "common/status.hpp"
#include "config/config.hpp"

namespace torl::model {

// "cpu", "cuda" (device 0) or "cuda:N". Fails when the name is malformed, CUDA is not available in
// this build or on this machine, or N is not a visible device.
Expected<torch::Device> resolve_device(const std::string& name);

torch::ScalarType scalar_type(config::DType dtype);

// "float32", "bfloat16" or "float16" (a command-line --dtype); fails naming the accepted values.
Expected<torch::ScalarType> parse_dtype(const std::string& name);

// Sets LibTorch's intra-op threads to the CPUs this process may run on, unless OMP_NUM_THREADS is set.
// (LibTorch's own default can be 1 on small VMs, which halves CPU training on 2 cores.) Call once at
// start, before any tensor work.
void use_available_cpus();

// run.deterministic: one intra-op thread and LibTorch's deterministic algorithms (an op without a
// deterministic implementation then fails instead of varying).
void make_deterministic();

// Makes glibc keep freed memory in the process instead of returning every large block to the kernel:
// a training step allocates and frees tensors of tens of MB, which glibc maps and unmaps each time
// (the pages are faulted in and zeroed again next step; a fifth of the wall time of a CPU step here).
// Call once at start.
void keep_freed_memory();

// The most device memory this process's tensors have held on `device` since the start (LibTorch's
// caching allocator: allocated, not reserved); -1 on the CPU or in a build without CUDA.
int64_t peak_device_memory(torch::Device device);

// One line about the tensor runtime, e.g. "LibTorch 2.11.0, CUDA unavailable, 2 threads".
std::string runtime_summary();

}  // namespace torl::model
