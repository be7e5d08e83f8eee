// Data parallelism for the policy trainer (DESIGN.md §6): R ranks (processes, or threads in tests)
// each run forward/backward on their share of a step's samples; a GradientSync combines what they
// computed (the loss normaliser, the gradients, the statistics) so that every rank takes the same
// optimizer step as one process would on the union of the samples.
//
// GradientSync is the small interface the trainer needs; the implementation behind it is a c10d
// backend (Gloo on CPU, NCCL on CUDA when built with TORL_WITH_NCCL), kept out of this header so that
// including it does not pull in c10d. Collectives block until every rank has joined; every
// rank must call them in the same order with tensors of the same shapes and dtypes. One thread per
// GradientSync at a time; a group lives as long as the last shared_ptr to it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "common/status.hpp"
#include "model/safetensors.hpp"

namespace torl::model {

// This process's place in a data-parallel run. Launched by torchrun (or torl train --nproc): RANK,
// WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT; by Slurm's srun: SLURM_PROCID, SLURM_NTASKS and
// SLURM_LOCALID stand in for the first three (MASTER_ADDR and MASTER_PORT are still needed: the
// job script sets them, e.g. to the first node of the allocation). Neither: one process, not launched.
struct RankPlacement {
  bool launched = false;  // a launcher set the variables: the ranks meet in a process group, also one alone
  int rank = 0, world = 1;
  int local_rank = 0;     // this process's index on its machine: its GPU
  int local_world = 1;    // processes on its machine (LOCAL_WORLD_SIZE, SLURM_NTASKS_PER_NODE; else all)
  std::string master_addr = "127.0.0.1";
  uint16_t master_port = 0;
};

// Reads the variables through `lookup` (std::getenv in production; a map in tests). Errors name the
// variable and its value: "WORLD_SIZE must be an integer in [1, 1024] (got 'x')".
using EnvLookup = std::function<const char*(const char*)>;
Expected<RankPlacement> rank_placement(const EnvLookup& lookup);

// The device a rank's models go on: model.device "cuda" (no index) means the rank's own GPU,
// cuda:<local_rank>; "cuda:N" and "cpu" are taken as written (every rank on cuda:N is the user's
// choice, e.g. to test). Fails when the GPU is not there: "rank 3 (local rank 3) needs cuda:3, but
// this machine has 2 GPUs". `gpus`: the visible GPU count.
Expected<torch::Device> rank_device(const std::string& name, const RankPlacement& rank, int gpus);

// The generators' device under rollout.placement: separate. "cuda" means the GPU after the learners'
// GPUs on this machine, cuda:(local_world + local_rank): with 4 ranks on an 8-GPU machine, rank r
// learns on cuda:r and generates on cuda:4+r. "cuda:N" and "cpu" are taken as written. Fails when the
// GPU is not there: "rank 1 (local rank 1 of 4) generates on cuda:5, but this machine has 4 GPU(s)".
Expected<torch::Device> generator_device(const std::string& name, const RankPlacement& rank, int gpus);

class GradientSync {
 public:
  enum class Op { kSum, kMax };

  virtual ~GradientSync() = default;
  virtual int rank() const = 0;        // 0 .. world_size - 1
  virtual int world_size() const = 0;  // >= 1

  // Replaces each tensor, in place, by its element-wise reduction (`op`) over the ranks. Tensors of
  // one dtype travel as one flattened buffer (over Gloo, bfloat16 and float16 as float32). Errors (the tensors are then unspecified): a transport
  // failure or timeout, e.g. a rank that died; the message says which collective.
  virtual Status all_reduce(const std::vector<torch::Tensor>& tensors, Op op = Op::kSum) = 0;

  // The same sum, started and not waited for: it runs while the caller goes on (on NCCL's stream, or
  // Gloo's thread), from flat copies taken now; finish() waits for it and writes the sums into the
  // tensors, which must stay alive until then. Every rank starts the same collectives in the same order.
  class Pending {
   public:
    virtual ~Pending() = default;
    virtual Status finish() = 0;
  };
  virtual Expected<std::unique_ptr<Pending>> start_all_reduce(const std::vector<torch::Tensor>& tensors) = 0;

  // Overwrites each tensor, in place (also parameters that require grad), with rank 0's values.
  virtual Status broadcast_from_rank0(const std::vector<torch::Tensor>& tensors) = 0;
};

// Joins a Gloo group (CPU tensors) of `world_size` ranks. Rendezvous through a c10d::TCPStore at
// master_addr:master_port, which rank 0 serves; every rank calls this, and each blocks until all have
// joined or `timeout` passes (the same timeout then bounds each collective). Gloo binds to this
// host's address (its hostname's, else loopback). Errors: bad rank/world size, the port in use or
// unreachable, a timeout: "joining gloo group as rank 1 of 2 via 10.0.0.1:29500: <cause>".
// A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it), for a rendezvous on this
// machine; 0 when none could be had. Another program may take it in between (unlikely).
uint16_t free_loopback_port();

Expected<std::shared_ptr<GradientSync>> make_gloo_group(
    int rank, int world_size, const std::string& master_addr, uint16_t master_port,
    std::chrono::milliseconds timeout = std::chrono::minutes(5));

// The process group of a launched run's ranks: NCCL when the models are on CUDA (a build with
// TORL_WITH_NCCL), else Gloo; master_port 0 (a launch of one rank without a port) takes a free one.
Expected<std::shared_ptr<GradientSync>> make_rank_group(const RankPlacement& rank, torch::Device device,
                                                        std::chrono::milliseconds timeout = std::chrono::minutes(5));

#ifdef TORL_WITH_NCCL
// The same for CUDA tensors over NCCL (one GPU per rank, selected by the caller before this call).
Expected<std::shared_ptr<GradientSync>> make_nccl_group(
    int rank, int world_size, const std::string& master_addr, uint16_t master_port,
    std::chrono::milliseconds timeout = std::chrono::minutes(5));
#endif

// Weights from the learner to the generators of this process when they are on another device
// (rollout.placement: separate): a c10d group of two ranks in this process, the caller (rank 0, the
// learner's device) and a receiver thread on the generators' device (rank 1), NCCL when both are
// CUDA devices, Gloo when both are the CPU. Each send() broadcasts a version number and then the
// tensors, one flat buffer per dtype; the receiver puts them into fresh tensors of its own (nothing
// the sender touches again) and hands them to `deliver`, on its thread, in the order sent.
class WeightBroadcast {
 public:
  using Deliver = std::function<void(int32_t version, std::shared_ptr<const TensorMap> weights)>;

  // `layout`: the names, shapes and dtypes the receiver allocates on `to` (e.g. the generators'
  // model's parameters; only their shapes are read). Blocks until both ranks have joined. Errors: the
  // devices mixed (a CPU and a GPU), one GPU for both (NCCL cannot), a failed rendezvous.
  static Expected<std::shared_ptr<WeightBroadcast>> start(const TensorMap& layout, torch::Device from, torch::Device to,
                                                          Deliver deliver,
                                                          std::chrono::milliseconds timeout = std::chrono::minutes(5));
  ~WeightBroadcast();  // close()

  // Whether weights can go from `from` to `to`: both GPUs (distinct: NCCL needs one per rank) or both
  // the CPU. The error names both devices.
  static Status check_devices(torch::Device from, torch::Device to);

  // From any one thread at a time: `weights` has the layout's names, on `from`. Returns once the
  // receiver has handed them to `deliver`; a receiver that failed makes it fail, and so does close().
  Status send(int32_t version, const TensorMap& weights);

  // Tells the receiver to stop, waits for it and drops `deliver` (an in-flight send finishes first).
  // Later sends fail with "closed". Idempotent.
  void close();
  bool closed() const;

 private:
  struct Receiver;
  WeightBroadcast();
  Status send_locked(int64_t version, const TensorMap* weights);

  mutable std::mutex mutex_;             // send and close
  bool closed_ = false;
  struct Sender;                     // rank 0's side: the group and the headers' store
  std::unique_ptr<Sender> sender_;   // guarded by mutex_
  std::shared_ptr<Receiver> receiver_;
  std::vector<std::string> names_;
  torch::Device from_ = torch::kCPU;
};

}  // namespace torl::model
