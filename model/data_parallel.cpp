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
#include <condition_variable>
#include <future>
#include <map>
#include <optional>
#include <thread>

#include <c10/core/DeviceGuard.h>
#include <c10/core/StreamGuard.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <torch/cuda.h>

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
    auto pending = start("all-reduce", tensors, [&](std::vector<torch::Tensor>& bucket) {
      c10d::AllreduceOptions options;
      options.reduceOp = op == Op::kSum ? c10d::ReduceOp::SUM : c10d::ReduceOp::MAX;
      return group_->allreduce(bucket, options);
    });
    return pending.ok() ? (*pending)->finish() : pending.status();
  }

  Expected<std::unique_ptr<Pending>> start_all_reduce(const std::vector<torch::Tensor>& tensors) override {
    return start("all-reduce", tensors, [&](std::vector<torch::Tensor>& bucket) {
      c10d::AllreduceOptions options;
      options.reduceOp = c10d::ReduceOp::SUM;
      return group_->allreduce(bucket, options);
    });
  }

  Status broadcast_from_rank0(const std::vector<torch::Tensor>& tensors) override {
    auto pending = start("broadcast", tensors, [&](std::vector<torch::Tensor>& bucket) {
      c10d::BroadcastOptions options;
      options.rootRank = 0;
      return group_->broadcast(bucket, options);
    });
    return pending.ok() ? (*pending)->finish() : pending.status();
  }

 private:
  // One collective per dtype on a flat copy of that dtype's tensors; finish() waits for them and
  // copies the results back. (A c10d call with several tensors means several local replicas of one
  // tensor, not a list.)
  class Flat final : public Pending {
   public:
    struct Part {
      c10::intrusive_ptr<c10d::Work> work;
      std::vector<torch::Tensor> bucket;   // the flat buffer
      std::vector<torch::Tensor> targets;  // the caller's tensors, in the buffer's order
    };
    Flat(const ProcessGroupSync& sync, const char* what) : sync_(sync), what_(what) {}
    std::vector<Part> parts;

    Status finish() override {
      try {
        torch::NoGradGuard no_grad;
        for (Part& part : parts) {
          part.work->wait();
          int64_t offset = 0;
          for (torch::Tensor& target : part.targets) {
            const int64_t n = target.numel();
            target.detach().copy_(part.bucket[0].narrow(0, offset, n).view(target.sizes()));
            offset += n;
          }
        }
        parts.clear();
        return {};
      } catch (const std::exception& e) {
        return sync_.failed(what_, e);
      }
    }

   private:
    const ProcessGroupSync& sync_;
    const char* what_;
  };

  Status failed(const char* what, const std::exception& e) const {
    return Status(StatusCode::kUnavailable, std::string(what) + " over the " + group_->getBackendName() + " group (rank " +
                                                std::to_string(rank()) + " of " + std::to_string(world_size()) +
                                                "): " + error_text(e));
  }

  template <class Collective>
  Expected<std::unique_ptr<Pending>> start(const char* what, const std::vector<torch::Tensor>& tensors,
                                           Collective collective) {
    auto pending = std::make_unique<Flat>(*this, what);
    try {
      torch::NoGradGuard no_grad;
      std::map<torch::ScalarType, std::vector<size_t>> by_dtype;  // ordered: the same on every rank
      for (size_t i = 0; i < tensors.size(); ++i) by_dtype[tensors[i].scalar_type()].push_back(i);
      for (const auto& [dtype, indices] : by_dtype) {
        Flat::Part part;
        std::vector<torch::Tensor> flat;
        for (const size_t i : indices) {
          flat.push_back(tensors[i].detach().reshape(-1));
          part.targets.push_back(tensors[i]);
        }
        part.bucket = {torch::cat(flat)};
        if (widen_halves_ && (dtype == torch::kBFloat16 || dtype == torch::kFloat16)) {
          part.bucket[0] = part.bucket[0].to(torch::kFloat32);
        }
        part.work = collective(part.bucket);
        pending->parts.push_back(std::move(part));
      }
      return std::unique_ptr<Pending>(std::move(pending));
    } catch (const std::exception& e) {
      return failed(what, e);
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
  const char* local_world_name = torchrun ? "LOCAL_WORLD_SIZE" : "SLURM_NTASKS_PER_NODE";
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
  r.local_world = r.world;  // one machine, unless told
  if (lookup(local_world_name) != nullptr) {
    auto local_world = number(local_world_name, r.local_rank + 1, *world);
    if (!local_world) return local_world.status();
    r.local_world = *local_world;
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

Expected<torch::Device> generator_device(const std::string& name, const RankPlacement& rank, int gpus) {
  if (name != "cuda") return resolve_device(name);
  const int index = rank.local_world + rank.local_rank;
  if (index >= gpus) {
    return Status(StatusCode::kUnavailable,
                  "rank " + std::to_string(rank.rank) + " (local rank " + std::to_string(rank.local_rank) + " of " +
                      std::to_string(rank.local_world) + ") generates on cuda:" + std::to_string(index) +
                      " (after the learners' GPUs), but this machine has " + std::to_string(gpus) +
                      " GPU(s): placement separate needs twice as many GPUs as learner processes on a machine");
  }
  return resolve_device("cuda:" + std::to_string(index));
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

// ---- WeightBroadcast ----

struct WeightBroadcast::Receiver {
  std::thread thread;
  std::chrono::milliseconds timeout{0};
  std::mutex mutex;
  std::condition_variable changed;
  // guarded by mutex:
  Status failure;         // why the receiver stopped early
  int64_t delivered = 0;  // versions handed to `deliver`
};

struct WeightBroadcast::Sender {
  std::shared_ptr<GradientSync> group;      // the tensors
  c10::intrusive_ptr<c10d::Store> headers;  // which version comes next, or the end
  int64_t headers_sent = 0;
};

WeightBroadcast::WeightBroadcast() = default;

Status WeightBroadcast::check_devices(torch::Device from, torch::Device to) {
  const std::string doing = "the weight broadcast from " + from.str() + " to " + to.str();
  if (from.is_cuda() != to.is_cuda()) {
    return invalid_argument(doing + ": the learner and the generators must both be on GPUs (NCCL) or both on the CPU (Gloo)");
  }
  if (from.is_cuda() && from.index() == to.index()) {
    return invalid_argument(doing + ": one GPU for both; separate placement needs the generators on another GPU");
  }
#ifndef TORL_WITH_NCCL
  if (from.is_cuda()) {
    return Status(StatusCode::kUnimplemented, doing + " needs NCCL: this torl was built without it (cmake -DTORL_WITH_NCCL=ON)");
  }
#endif
  return {};
}

Expected<std::shared_ptr<WeightBroadcast>> WeightBroadcast::start(const TensorMap& layout, torch::Device from,
                                                                  torch::Device to, Deliver deliver,
                                                                  std::chrono::milliseconds timeout) {
  const std::string doing = "the weight broadcast from " + from.str() + " to " + to.str();
  if (Status s = check_devices(from, to); !s.ok()) return s;
  const uint16_t port = free_loopback_port();
  if (port == 0) return Status(StatusCode::kUnavailable, doing + ": no free port on 127.0.0.1 for the rendezvous");
  uint16_t header_port = free_loopback_port();
  for (int tries = 0; header_port == port && tries < 8; ++tries) header_port = free_loopback_port();
  if (header_port == 0 || header_port == port) return Status(StatusCode::kUnavailable, doing + ": no free port on 127.0.0.1 for the rendezvous");
  // Each side: a store for the headers (which version comes next; a receiver idles there, on the CPU,
  // for as long as the learner takes) and the group that carries the tensors once both are there.
  struct Side {
    c10::intrusive_ptr<c10d::Store> headers;
    std::shared_ptr<GradientSync> group;
  };
  const auto join = [from, port, header_port, timeout](int rank) -> Expected<Side> {
    Side side;
    try {
      side.headers = make_store(rank, 2, "127.0.0.1", header_port, timeout);
    } catch (const std::exception& e) {
      return Status(StatusCode::kUnavailable, "the headers' store: " + error_text(e));
    }
#ifdef TORL_WITH_NCCL
    auto group = from.is_cuda() ? make_nccl_group(rank, 2, "127.0.0.1", port, timeout)
                                : make_gloo_group(rank, 2, "127.0.0.1", port, timeout);
#else
    auto group = make_gloo_group(rank, 2, "127.0.0.1", port, timeout);
#endif
    if (!group) return group.status();
    side.group = std::move(*group);
    return side;
  };

  struct Slot {
    std::string name;
    std::vector<int64_t> sizes;
    torch::ScalarType dtype;
  };
  std::vector<Slot> slots;
  std::shared_ptr<WeightBroadcast> out(new WeightBroadcast);
  for (const auto& [name, tensor] : layout) {
    slots.push_back({name, tensor.sizes().vec(), tensor.scalar_type()});
    out->names_.push_back(name);
  }
  out->from_ = from;
  out->receiver_ = std::make_shared<Receiver>();
  out->receiver_->timeout = timeout;
  std::promise<Status> joined;
  std::future<Status> receiver_joined = joined.get_future();
  out->receiver_->thread = std::thread([receiver = out->receiver_, slots = std::move(slots), to, join,
                                        deliver = std::move(deliver), joined = std::move(joined)]() mutable {
    const c10::DeviceGuard on_device(to);
    // A stream of its own: what waits for the weights blocks neither the generators' work nor their
    // graphs on the default stream.
    std::optional<c10::StreamGuard> own_stream;
    if (to.is_cuda()) own_stream.emplace(c10::impl::getDeviceGuardImpl(to.type())->getStreamFromGlobalPool(to));
    auto side = join(1);
    joined.set_value(side.ok() ? Status{} : side.status());
    if (!side.ok()) return;
    const auto stop = [&](Status failure) {
      std::lock_guard lock(receiver->mutex);
      receiver->failure = std::move(failure);
      receiver->changed.notify_all();
    };
    try {
      for (int64_t n = 1;; ++n) {
        const std::string key = "send/" + std::to_string(n);
        for (;;) {  // as long as the learner takes: an hour at a time
          try {
            side->headers->wait({key}, std::chrono::hours(1));
            break;
          } catch (const c10::DistStoreError& e) {
            if (std::string(e.what()).find("timeout") == std::string::npos) throw;
          }
        }
        const std::vector<uint8_t> value = side->headers->get(key);
        const std::string header(value.begin(), value.end());
        if (header == "end") return;  // close()
        auto weights = std::make_shared<TensorMap>();
        std::vector<torch::Tensor> tensors;
        for (const Slot& slot : slots) {
          tensors.push_back(torch::empty(slot.sizes, torch::TensorOptions().dtype(slot.dtype).device(to)));
          (*weights)[slot.name] = tensors.back();
        }
        if (Status s = side->group->broadcast_from_rank0(tensors); !s.ok()) return stop(s);
        if (to.is_cuda()) torch::cuda::synchronize(to.index());  // in place before another thread reads them
        deliver(static_cast<int32_t>(std::stol(header)), std::move(weights));
        std::lock_guard lock(receiver->mutex);
        ++receiver->delivered;
        receiver->changed.notify_all();
      }
    } catch (const std::exception& e) {
      stop(Status(StatusCode::kInternal, "receiving weights on " + to.str() + ": " + error_text(e)));
    }
  });
  auto side = join(0);
  const Status receiver_status = receiver_joined.get();
  if (!side.ok() || !receiver_status.ok()) {
    out->receiver_->thread.join();
    out->closed_ = true;
    return (side.ok() ? receiver_status : side.status()).with_context(doing);
  }
  out->sender_ = std::make_unique<Sender>(Sender{std::move(side->group), std::move(side->headers)});
  return out;
}

WeightBroadcast::~WeightBroadcast() { close(); }

bool WeightBroadcast::closed() const {
  std::lock_guard lock(mutex_);
  return closed_;
}

Status WeightBroadcast::send_locked(int64_t version, const TensorMap* weights) {
  {
    std::lock_guard lock(receiver_->mutex);
    if (!receiver_->failure.ok()) return receiver_->failure;
  }
  try {
    const std::string header = weights ? std::to_string(version) : "end";
    sender_->headers->set("send/" + std::to_string(++sender_->headers_sent), std::vector<uint8_t>(header.begin(), header.end()));
  } catch (const std::exception& e) {
    return Status(StatusCode::kUnavailable, "sending weights: the headers' store: " + error_text(e));
  }
  if (!weights) return {};
  const c10::DeviceGuard on_device(from_);
  std::vector<torch::Tensor> tensors;
  for (const std::string& name : names_) tensors.push_back(weights->at(name));
  return sender_->group->broadcast_from_rank0(tensors);
}

Status WeightBroadcast::send(int32_t version, const TensorMap& weights) {
  std::lock_guard lock(mutex_);
  if (closed_) return Status(StatusCode::kAborted, "the weight broadcast is closed (the run is ending)");
  // every name is checked before the first collective: a missing one would leave the receiver waiting
  for (const std::string& name : names_) {
    if (!weights.count(name)) return invalid_argument("sending weights: no tensor '" + name + "'");
  }
  if (Status s = send_locked(version, &weights); !s.ok()) return s;
  // Delivered before this returns: whatever the caller does next (e.g. starting the next step's
  // rollouts) comes after the generators were given this version.
  const int64_t sent = sender_->headers_sent;  // every header so far carried a version
  std::unique_lock delivered(receiver_->mutex);
  const bool done = receiver_->changed.wait_for(delivered, receiver_->timeout, [&] {
    return receiver_->delivered == sent || !receiver_->failure.ok();
  });
  if (!receiver_->failure.ok()) return receiver_->failure;
  if (!done) return Status(StatusCode::kUnavailable, "sending weights: the receiver did not deliver version " + std::to_string(version) + " in time");
  return {};
}

void WeightBroadcast::close() {
  std::lock_guard lock(mutex_);
  if (closed_) return;
  closed_ = true;
  bool failed = false;
  {
    std::lock_guard receiver_lock(receiver_->mutex);
    failed = !receiver_->failure.ok();
  }
  // A receiver that stopped early is not waiting for the end; one that is waits for the next header.
  if (!failed && !send_locked(-1, nullptr).ok()) failed = true;
  if (failed) {
    receiver_->thread.detach();  // it ends on its own (its group's timeout); its state is shared
  } else {
    receiver_->thread.join();
  }
  sender_.reset();
}

}  // namespace torl::model
