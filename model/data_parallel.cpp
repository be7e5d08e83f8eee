// LibTorch carries Gloo's code but not its headers, which ProcessGroupGloo.hpp includes; CMake defines
// USE_C10D_GLOO (and USE_C10D_NCCL with TORL_WITH_NCCL), under which c10d declares the backends.
#if !__has_include(<gloo/config.h>)
#error "model/data_parallel.cpp needs Gloo's headers: apt-get install libgloo-dev (tools/setup lists it)"
#endif

#include "model/data_parallel.hpp"

#include "model/device.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <map>

#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef TORL_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace torl::model {
namespace {

std::string error_text(const std::exception& e) {
  const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
  return c10_error ? c10_error->what_without_backtrace() : e.what();
}

// A c10d backend (Gloo or NCCL) used directly: torl needs its collectives, not ProcessGroup's dispatch
// by device.
class ProcessGroupSync final : public GradientSync {
 public:
  // widen_halves: bfloat16/float16 travel as float32 (Gloo has no bfloat16 sum; float32 sums are also
  // more accurate), and are rounded back once at the end.
  ProcessGroupSync(c10::intrusive_ptr<c10d::Backend> group, bool widen_halves)
      : group_(std::move(group)), widen_halves_(widen_halves) {}
  // NCCL wants its communicators shut down before the process ends (else it warns at exit).
  ~ProcessGroupSync() override {
    try {
      group_->shutdown();
    } catch (const std::exception&) {  // a group that failed already: nothing left to close
    }
  }

  int rank() const override { return group_->getRank(); }
  int world_size() const override { return group_->getSize(); }

  Status all_reduce(const std::vector<torch::Tensor>& tensors, Op op) override {
    c10d::AllreduceOptions options;
    options.reduceOp = op == Op::kSum ? c10d::ReduceOp::SUM : c10d::ReduceOp::MAX;
    return for_each_bucket("all-reduce", tensors, [&](std::vector<torch::Tensor>& bucket) {
      group_->allreduce(bucket, options)->wait();
    });
  }

  Status broadcast_from_rank0(const std::vector<torch::Tensor>& tensors) override {
    c10d::BroadcastOptions options;
    options.rootRank = 0;
    return for_each_bucket("broadcast", tensors, [&](std::vector<torch::Tensor>& bucket) {
      group_->broadcast(bucket, options)->wait();
    });
  }

 private:
  // Runs `collective` once per dtype on a flat copy of that dtype's tensors, then copies the result
  // back. (A c10d call with several tensors means several local replicas of one tensor, not a list.)
  template <class Collective>
  Status for_each_bucket(const char* what, const std::vector<torch::Tensor>& tensors, Collective collective) {
    try {
      torch::NoGradGuard no_grad;
      std::map<torch::ScalarType, std::vector<size_t>> by_dtype;  // ordered: the same on every rank
      for (size_t i = 0; i < tensors.size(); ++i) by_dtype[tensors[i].scalar_type()].push_back(i);
      for (const auto& [dtype, indices] : by_dtype) {
        std::vector<torch::Tensor> flat;
        for (const size_t i : indices) flat.push_back(tensors[i].detach().reshape(-1));
        std::vector<torch::Tensor> bucket = {torch::cat(flat)};
        if (widen_halves_ && (dtype == torch::kBFloat16 || dtype == torch::kFloat16)) {
          bucket[0] = bucket[0].to(torch::kFloat32);
        }
        collective(bucket);
        int64_t offset = 0;
        for (const size_t i : indices) {
          const int64_t n = tensors[i].numel();
          tensors[i].detach().copy_(bucket[0].narrow(0, offset, n).view(tensors[i].sizes()));
          offset += n;
        }
      }
      return {};
    } catch (const std::exception& e) {
      return Status(StatusCode::kUnavailable, std::string(what) + " over the " + group_->getBackendName() +
                                                  " group (rank " + std::to_string(rank()) + " of " +
                                                  std::to_string(world_size()) + "): " + error_text(e));
    }
  }

  c10::intrusive_ptr<c10d::Backend> group_;
  bool widen_halves_;
};

Status check_ranks(int rank, int world_size) {
  if (world_size < 1 || rank < 0 || rank >= world_size) {
    return invalid_argument("rank " + std::to_string(rank) + " of world size " + std::to_string(world_size) +
                            ": need 0 <= rank < world_size");
  }
  return {};
}

c10::intrusive_ptr<c10d::Store> make_store(int rank, int world_size, const std::string& master_addr,
                                           uint16_t master_port, std::chrono::milliseconds timeout) {
  c10d::TCPStoreOptions options;
  options.port = master_port;
  options.isServer = rank == 0;
  options.numWorkers = static_cast<size_t>(world_size);
  options.timeout = timeout;
  return c10::make_intrusive<c10d::TCPStore>(master_addr, options);
}

std::string joining(const char* backend, int rank, int world_size, const std::string& addr, uint16_t port) {
  return std::string("joining ") + backend + " group as rank " + std::to_string(rank) + " of " +
         std::to_string(world_size) + " via " + addr + ":" + std::to_string(port);
}

}  // namespace

Expected<std::shared_ptr<GradientSync>> make_gloo_group(int rank, int world_size, const std::string& master_addr,
                                                        uint16_t master_port, std::chrono::milliseconds timeout) {
  const std::string doing = joining("gloo", rank, world_size, master_addr, master_port);
  if (auto status = check_ranks(rank, world_size); !status.ok()) return status.with_context(doing);
  try {
    auto store = make_store(rank, world_size, master_addr, master_port, timeout);
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    auto group = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world_size, options);
    return std::shared_ptr<GradientSync>(std::make_shared<ProcessGroupSync>(std::move(group), true));
  } catch (const std::exception& e) {
    return Status(StatusCode::kUnavailable, doing + ": " + error_text(e));
  }
}

#ifdef TORL_WITH_NCCL
Expected<std::shared_ptr<GradientSync>> make_nccl_group(int rank, int world_size, const std::string& master_addr,
                                                        uint16_t master_port, std::chrono::milliseconds timeout) {
  const std::string doing = joining("nccl", rank, world_size, master_addr, master_port);
  if (auto status = check_ranks(rank, world_size); !status.ok()) return status.with_context(doing);
  try {
    auto store = make_store(rank, world_size, master_addr, master_port, timeout);
    auto options = c10d::ProcessGroupNCCL::Options::create();
    options->timeout = timeout;
    auto group = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, world_size, options);
    return std::shared_ptr<GradientSync>(std::make_shared<ProcessGroupSync>(std::move(group), false));
  } catch (const std::exception& e) {
    return Status(StatusCode::kUnavailable, doing + ": " + error_text(e));
  }
}
#endif

uint16_t free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  ::close(fd);
  return port;
}

Expected<RankPlacement> rank_placement(const EnvLookup& lookup) {
  RankPlacement r;
  const auto number = [&](const char* name, int low, int high) -> Expected<int> {
    const char* text = lookup(name);
    char* end = nullptr;
    const long value = text ? std::strtol(text, &end, 10) : 0;
    if (!text || *text == '\0' || *end != '\0' || value < low || value > high) {
      return invalid_argument(std::string(name) + " must be an integer in [" + std::to_string(low) + ", " +
                              std::to_string(high) + "] (got '" + (text ? text : "") + "')");
    }
    return static_cast<int>(value);
  };
  // torchrun's names, else Slurm's.
  const bool torchrun = lookup("WORLD_SIZE") != nullptr;
  if (!torchrun && lookup("SLURM_NTASKS") == nullptr) return r;
  const char* world_name = torchrun ? "WORLD_SIZE" : "SLURM_NTASKS";
  const char* rank_name = torchrun ? "RANK" : "SLURM_PROCID";
  const char* local_name = torchrun ? "LOCAL_RANK" : "SLURM_LOCALID";
  auto world = number(world_name, 1, 1024);
  if (!world) return world.status();
  auto rank = number(rank_name, 0, *world - 1);
  if (!rank) return rank.status();
  r.launched = true;
  r.world = *world;
  r.rank = *rank;
  if (lookup(local_name) != nullptr) {
    auto local = number(local_name, 0, *world - 1);
    if (!local) return local.status();
    r.local_rank = *local;
  } else {
    r.local_rank = r.rank;  // one machine
  }
  if (const char* addr = lookup("MASTER_ADDR")) r.master_addr = addr;
  if (lookup("MASTER_PORT") != nullptr || r.world > 1) {
    auto port = number("MASTER_PORT", 1, 65535);
    if (!port) return port.status();
    r.master_port = static_cast<uint16_t>(*port);
  }
  return r;
}

Expected<torch::Device> rank_device(const std::string& name, const RankPlacement& rank, int gpus) {
  if (name != "cuda") return resolve_device(name);
  if (rank.local_rank >= gpus) {
    return Status(StatusCode::kUnavailable,
                  "rank " + std::to_string(rank.rank) + " (local rank " + std::to_string(rank.local_rank) + ") needs cuda:" +
                      std::to_string(rank.local_rank) + ", but this machine has " + std::to_string(gpus) +
                      " GPU(s): start at most one rank per GPU");
  }
  return resolve_device("cuda:" + std::to_string(rank.local_rank));
}

Expected<std::shared_ptr<GradientSync>> make_rank_group(const RankPlacement& rank, torch::Device device,
                                                        std::chrono::milliseconds timeout) {
  uint16_t port = rank.master_port;
  if (port == 0) port = free_loopback_port();
  if (port == 0) return Status(StatusCode::kUnavailable, "no free port on 127.0.0.1 for the rendezvous");
  if (device.is_cuda()) {
#ifdef TORL_WITH_NCCL
    return make_nccl_group(rank.rank, rank.world, rank.master_addr, port, timeout);
#else
    return Status(StatusCode::kUnimplemented,
                  "data parallelism on CUDA needs NCCL: this torl was built without it (cmake -DTORL_WITH_NCCL=ON)");
#endif
  }
  return make_gloo_group(rank.rank, rank.world, rank.master_addr, port, timeout);
}

}  // namespace torl::model
