#include "model/device.hpp"

#include <malloc.h>
#include <sched.h>

#include <charconv>
#include <cstdlib>

#ifdef TORL_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace torl::model {

Expected<torch::Device> resolve_device(const std::string& name) {
  if (name == "cpu") return torch::Device(torch::kCPU);
  int index = 0;
  if (name != "cuda") {
    const std::string prefix = "cuda:";
    const char* first = name.data() + prefix.size();
    const char* last = name.data() + name.size();
    if (name.rfind(prefix, 0) != 0 || first == last ||
        std::from_chars(first, last, index).ptr != last || index < 0) {
      return invalid_argument("device '" + name + "' is not cpu, cuda or cuda:N");
    }
  }
  if (!torch::cuda::is_available()) {
    return Status(StatusCode::kUnavailable,
                  "device '" + name + "' requested, but CUDA is not available (this LibTorch build or "
                  "machine has no GPU); set model.device: cpu");
  }
  const int count = static_cast<int>(torch::cuda::device_count());
  if (index >= count) {
    return Status(StatusCode::kUnavailable, "device '" + name + "' requested, but only " +
                                                std::to_string(count) + " CUDA device(s) are visible");
  }
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

torch::ScalarType scalar_type(config::DType dtype) {
  switch (dtype) {
    case config::DType::kFloat32: return torch::kFloat32;
    case config::DType::kBFloat16: return torch::kBFloat16;
    case config::DType::kFloat16: return torch::kFloat16;
  }
  TORL_CHECK(false, "unhandled dtype");
}

Expected<torch::ScalarType> parse_dtype(const std::string& name) {
  if (name == "float32") return torch::kFloat32;
  if (name == "bfloat16") return torch::kBFloat16;
  if (name == "float16") return torch::kFloat16;
  return invalid_argument("--dtype must be float32, bfloat16 or float16 (got '" + name + "')");
}

void use_available_cpus() {
  if (std::getenv("OMP_NUM_THREADS") != nullptr) return;
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  const int count = ::sched_getaffinity(0, sizeof(cpus), &cpus) == 0 ? CPU_COUNT(&cpus) : 0;
  if (count > 0) at::set_num_threads(count);
}

void make_deterministic() {
  at::set_num_threads(1);
  at::globalContext().setDeterministicAlgorithms(true, /*warn_only=*/false);
}

void keep_freed_memory() {
  ::mallopt(M_MMAP_MAX, 0);                     // large blocks from the heap, not one mapping each
  ::mallopt(M_TRIM_THRESHOLD, 1 << 30);         // and the heap's top given back only past 1 GiB free
}

int64_t peak_device_memory(torch::Device device) {
#ifdef TORL_WITH_CUDA
  if (device.is_cuda() && torch::cuda::is_available()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index() < 0 ? 0 : device.index());
    return stats.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)].peak;
  }
#endif
  return -1;
}

std::string runtime_summary() {
  std::string cuda = torch::cuda::is_available()
                         ? "CUDA with " + std::to_string(torch::cuda::device_count()) + " device(s)"
                         : "CUDA unavailable";
  return std::string("LibTorch ") + TORCH_VERSION + ", " + cuda + ", " +
         std::to_string(at::get_num_threads()) + " threads";
}

}  // namespace torl::model
