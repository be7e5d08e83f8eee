// The policy update of one GRPO step (DESIGN.md §6): scored samples in, one AdamW step on the policy
// out. Builds right-padded prompt+response batches, scores the responses with token_logprobs at the
// sampling temperature, takes the PPO-clip loss of grpo.hpp over the model's own tokens (tool output
// masked), accumulates gradients over micro-batches (train.micro_batch sequences, or packed by
// train.micro_batch_tokens) with the whole step's normaliser (so the result does not depend on how the
// batch is split), clips the global grad norm and steps with linear warmup.
//
// Mixed precision (train.master_dtype wider than the policy's dtype, e.g. float32 over bfloat16): the
// forward and backward run on the policy in its dtype; after each micro-batch its gradients are added
// into float32 master weights, which are summed over ranks, clipped and stepped by AdamW (float32
// state); the policy then gets the masters rounded to its dtype. Otherwise the masters are the policy's
// parameters themselves.
//
// π_old (algorithm.old_logprobs): trainer = the update's own forward, detached (one optimizer step per
// batch, so that is the policy before the update; the ratio starts at exactly 1); sampler = the
// samples' old_logprobs.
//
// Owned by the learner; one thread at a time. It borrows the policy (and the optional frozen reference
// model for the KL term), which must outlive it; the policy's parameters are set to require grad.
// Optimizer state can be saved and restored as a TensorMap for checkpoints (safetensors.hpp).
//
// Data parallel (options.sync set): every rank owns a trainer over its own copy of the policy and
// calls create, step and compute_gradients in lockstep, each with its share of the step's samples.
// The normaliser, the gradients and the statistics are summed over the ranks, so every rank takes the
// step one process would take on the union of the shares (split in micro-batches the same way). The
// gradients go in buckets (options.bucket_bytes) started during the last micro-batch's backward, so
// the transfer overlaps the rest of it. The trainer hooks the policy's parameters (post-accumulate-grad
// hooks, removed when it is destroyed): one trainer per policy.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "common/status.hpp"
#include "config/config.hpp"
#include "model/data_parallel.hpp"
#include "model/grpo.hpp"
#include "model/qwen2.hpp"
#include "model/safetensors.hpp"

namespace torl::model {

// One sampled trajectory, ready for the update.
struct PolicySample {
  std::vector<int32_t> prompt;        // token ids, at least 1
  std::vector<int32_t> response;      // token ids after the prompt (model tokens and tool output), at least 1
  std::vector<uint8_t> loss_mask;     // per response token: 1 = the model's own token, 0 = tool output
  std::vector<float> old_logprobs;    // per response token, from the sampler (at `temperature`): π_old with
                                      // algorithm.old_logprobs sampler, else for policy/sampler_gap
  float advantage = 0.0f;             // the group advantage of the whole response
};

struct PolicyTrainerOptions {
  config::TrainConfig train;          // lr, betas, weight decay, grad_clip, warmup_steps, micro_batch
  config::AlgorithmConfig algorithm;  // clip, aggregation, KL, entropy
  double temperature = 1.0;           // the rollout's sampling temperature; > 0
  std::shared_ptr<GradientSync> sync;  // the data-parallel group; null = a single process
  // Data parallel: the gradients are summed in buckets of about this many bytes, each started during
  // the last micro-batch's backward as soon as its gradients are complete (as PyTorch's DDP).
  int64_t bucket_bytes = int64_t{25} << 20;
  // Supervised (pre-training, the demo's base model): next-token cross-entropy on the masked tokens,
  // weighted by each sample's advantage (1 for plain SFT); old_logprobs are ignored (zeros will do).
  bool supervised = false;
};

// What one step did. Loss terms are aggregated as in the loss (algorithm.loss_agg) over the whole step
// (over every rank's share when data parallel; the same numbers on every rank).
struct StepStats {
  double loss = 0;            // the optimised objective; supervised: sum of advantage * -log p / normaliser
  double pg_loss = 0;
  double kl = 0;              // to the reference model; 0 without one
  double entropy = 0;         // of the policy at the model tokens
  double ppo_kl = 0;          // old - new log-prob: how far the policy is from π_old
  double sampler_gap = 0;     // mean |sampler - trainer| log-prob over model tokens (token mean)
  double clip_fraction = 0;   // fraction of model tokens whose ratio clip was active
  double ratio_min = 1, ratio_max = 1;
  double grad_norm = 0;       // global L2 norm before clipping
  double lr = 0;              // the learning rate used
  int64_t tokens = 0;         // model tokens in the loss
  int64_t total_tokens = 0;   // prompt + response tokens run through the model
  int64_t padded_tokens = 0;  // sequences x longest, summed over the micro-batches (all ranks)
  int64_t micro_batches = 0;  // this rank's forward/backward passes
  // data parallel: the buckets the gradients were summed in, and of those, the ones started during
  // this rank's backward (the rest started after it: parameters without a gradient, an empty share)
  int64_t grad_buckets = 0, grad_buckets_in_backward = 0;
  double ms = 0;              // wall time of the call
};

class PolicyTrainer {
 public:
  // Checks the options (temperature > 0; a reference model when kl_coef > 0, with the policy's
  // vocabulary and not the policy itself) and creates the AdamW optimizer over the policy's
  // parameters. With options.sync, every rank must call it: the policy's parameters are overwritten
  // with rank 0's, so that the ranks start equal. Errors say which option is wrong, or that the
  // broadcast failed.
  static Expected<PolicyTrainer> create(Qwen2Model& policy, const PolicyTrainerOptions& options,
                                        const Qwen2Model* reference = nullptr);

  // One optimizer step on `samples` (the whole step's batch, or this rank's share of it; a rank's
  // share may be empty): compute_gradients, then clip and step.
  // Errors (nothing is changed): malformed samples (which one and why), a LibTorch failure such as
  // out of memory; kAborted (the run may go on without this step): no model token in the batch (on
  // any rank), a non-finite gradient norm. Data parallel, every rank
  // fails when one does (the others say so), so that none is left waiting in a collective; a failed
  // collective (a rank died or timed out) is an error too, after which the group is unusable.
  Expected<StepStats> step(const std::vector<PolicySample>& samples);

  // The forward/backward half of step(): zeroes the gradients and leaves the gradient of the step's
  // loss (summed over micro-batches, and over the ranks when data parallel) in the master weights'
  // grad() (the policy's parameters when they are the masters); grad_norm and lr are left 0. For tests
  // and diagnostics.
  Expected<StepStats> compute_gradients(const std::vector<PolicySample>& samples);

  // The learning rate the next step uses: train.lr * min(1, (step_count + 1) / warmup_steps); with
  // train.lr_schedule linear, after the warmup it falls linearly to train.lr / 10 at train.steps.
  double learning_rate() const;

  // Optimizer steps taken; set when resuming so that the warmup continues where it stopped.
  int64_t step_count() const { return step_count_; }
  void set_step_count(int64_t steps) { step_count_ = steps; }

  // The weights AdamW steps, in the policy's named_parameters order: float32 copies under mixed
  // precision, else the policy's parameters.
  const std::vector<torch::Tensor>& master_weights() const { return masters_; }
  bool mixed_precision() const { return mixed_; }

  // AdamW state per parameter (HF name): "exp_avg/<name>", "exp_avg_sq/<name>" (the master's shape
  // and dtype) and "step/<name>" (int64 [1]), and under mixed precision the master weights
  // "master/<name>"; CPU copies. Parameters not yet stepped have no exp_avg, exp_avg_sq, step.
  TensorMap optimizer_state() const;

  // Replaces the AdamW state (and the master weights, which are then copied into the policy) with
  // `state`. Every parameter needs its three entries (and its master under mixed precision) with the
  // right shapes, and no other entry may be present; otherwise nothing changes and the error names the
  // tensor: "optimizer state: missing exp_avg/model.norm.weight". Values are copied to the master's
  // device and dtype.
  Status load_optimizer_state(const TensorMap& state);

 private:
  PolicyTrainer(Qwen2Model& policy, const PolicyTrainerOptions& options, const Qwen2Model* reference);

  Status check_samples(const std::vector<PolicySample>& samples) const;
  // Mixed precision: the policy's parameters = the masters in the policy's dtype; the policy's
  // gradients (one micro-batch's) added into the masters' and cleared. No-ops otherwise.
  void copy_masters_to_policy();
  void add_gradients_to_masters();
  // Data parallel: sums the statistics over the ranks and agrees on failures and on the parameters
  // without gradients (the gradients themselves: GradientBuckets).
  Status combine_over_ranks(torch::Tensor& sums, torch::Tensor& ratio_extremes, StepStats& stats,
                            const Status& local_failure);

  class GradientBuckets;  // data parallel: the bucketed sums started during the backward

  // ---- set once by create ----
  Qwen2Model* policy_;
  const Qwen2Model* reference_;  // nullptr = no KL term
  PolicyTrainerOptions options_;
  std::vector<std::string> names_;     // parameter names, in the optimizer's order
  std::vector<torch::Tensor> params_;  // the policy's parameters, same order
  std::vector<torch::Tensor> masters_;  // what AdamW steps: float32 copies of params_, or params_ itself
  bool mixed_ = false;                  // masters_ are copies
  std::shared_ptr<GradientBuckets> buckets_;  // with options_.sync; owns the parameters' hooks

  // ---- changed by step / load ----
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  int64_t step_count_ = 0;
};

}  // namespace torl::model
