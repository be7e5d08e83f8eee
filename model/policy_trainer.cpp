#include "model/policy_trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>
#include <sstream>
#include <string>

#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include "model/device.hpp"
#include "model/logprobs.hpp"

namespace torl::model {
namespace {

std::string shape_string(torch::IntArrayRef sizes) {
  std::ostringstream out;
  out << '[';
  for (size_t i = 0; i < sizes.size(); ++i) out << (i ? "," : "") << sizes[i];
  out << ']';
  return out.str();
}

// The optimizer's key for a parameter's state (as torch/optim/adamw.cpp looks it up).
void* state_key(const torch::Tensor& param) { return param.unsafeGetTensorImpl(); }

// A micro-batch as tensors on the model's device. Sequence b is prompt+response, right-padded to T;
// its response token j sits at input position P_b + j and is predicted at log-prob position P_b + j - 1.
struct MicroBatch {
  torch::Tensor input_ids;       // [B, T] int64, 0 at padding
  torch::Tensor attention_mask;  // [B, T] int64
  torch::Tensor position_ids;    // [B, T] int64, 0..T-1
  torch::Tensor response_index;  // [B, R] int64: log-prob position of response token j (0 past its end)
  torch::Tensor wanted;          // [B, T-1] bool: the log-prob positions of response tokens
  torch::Tensor loss_mask;       // [B, R] float32: 1 = model token in the loss
  torch::Tensor old_logprobs;    // [B, R] float32
  torch::Tensor advantages;      // [B] float32
  int64_t tokens = 0;            // real tokens (prompt + response)
  int64_t padded = 0;            // B x T
  int64_t shared_prefix = 0;     // leading tokens equal in every row (run once; token_logprobs)
};

// A step's samples in micro-batches (indices into `samples`). With only `max_sequences`, in order, that
// many at a time. With `max_tokens` > 0 too, sorted by length (longest first, ties in order) and packed
// while the padded size (sequences x the longest) stays within max_tokens, so rows of like length share
// a micro-batch and padding stays small; a sequence longer than the budget goes alone.
std::vector<std::vector<size_t>> plan_micro_batches(const std::vector<PolicySample>& samples, int64_t max_sequences,
                                                    int64_t max_tokens) {
  std::vector<size_t> order(samples.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  const auto length = [&](size_t i) { return static_cast<int64_t>(samples[i].prompt.size() + samples[i].response.size()); };
  if (max_tokens > 0) std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return length(a) > length(b); });
  std::vector<std::vector<size_t>> batches;
  int64_t longest = 0;
  for (const size_t i : order) {
    const bool full = !batches.empty() &&
                      (static_cast<int64_t>(batches.back().size()) >= max_sequences ||
                       (max_tokens > 0 && (static_cast<int64_t>(batches.back().size()) + 1) *
                                                  std::max(longest, length(i)) > max_tokens));
    if (batches.empty() || full) {
      batches.emplace_back();
      longest = 0;
    }
    batches.back().push_back(i);
    longest = std::max(longest, length(i));
  }
  return batches;
}

MicroBatch build_micro_batch(const std::vector<PolicySample>& samples, const std::vector<size_t>& rows,
                             torch::Device device) {
  const auto B = static_cast<int64_t>(rows.size());
  int64_t T = 0, R = 0;
  MicroBatch mb;
  const auto& first = samples[rows.front()].prompt;
  mb.shared_prefix = static_cast<int64_t>(first.size()) - 1;  // at least one prompt token of each row runs alone
  for (const size_t i : rows) {
    const auto& prompt = samples[i].prompt;
    T = std::max<int64_t>(T, prompt.size() + samples[i].response.size());
    R = std::max<int64_t>(R, samples[i].response.size());
    const auto differ = std::mismatch(prompt.begin(), prompt.end(), first.begin(), first.end()).first - prompt.begin();
    mb.shared_prefix = std::min<int64_t>({mb.shared_prefix, differ, static_cast<int64_t>(prompt.size()) - 1});
  }
  mb.padded = B * T;
  std::vector<int64_t> ids(B * T, 0), attn(B * T, 0), index(B * R, 0);
  std::vector<uint8_t> wanted(B * (T - 1), 0);
  std::vector<float> mask(B * R, 0.0f), old(B * R, 0.0f), adv(B);
  for (int64_t b = 0; b < B; ++b) {
    const auto& s = samples[rows[static_cast<size_t>(b)]];
    const auto P = static_cast<int64_t>(s.prompt.size());
    const auto n = static_cast<int64_t>(s.response.size());
    for (int64_t t = 0; t < P; ++t) ids[b * T + t] = s.prompt[t];
    for (int64_t j = 0; j < n; ++j) {
      ids[b * T + P + j] = s.response[j];
      index[b * R + j] = P + j - 1;
      wanted[b * (T - 1) + P + j - 1] = 1;
      mask[b * R + j] = s.loss_mask[j] ? 1.0f : 0.0f;
      old[b * R + j] = s.old_logprobs[j];
    }
    std::fill_n(attn.begin() + b * T, P + n, 1);
    adv[b] = s.advantage;
    mb.tokens += P + n;
  }
  const auto i64 = torch::TensorOptions().dtype(torch::kInt64);
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  mb.input_ids = torch::from_blob(ids.data(), {B, T}, i64).to(device);
  mb.attention_mask = torch::from_blob(attn.data(), {B, T}, i64).to(device);
  mb.position_ids = torch::arange(T, i64).unsqueeze(0).expand({B, T}).to(device);
  mb.response_index = torch::from_blob(index.data(), {B, R}, i64).to(device);
  mb.wanted = torch::from_blob(wanted.data(), {B, T - 1}, torch::kUInt8).to(torch::kBool).to(device);
  mb.loss_mask = torch::from_blob(mask.data(), {B, R}, f32).to(device);
  mb.old_logprobs = torch::from_blob(old.data(), {B, R}, f32).to(device);
  mb.advantages = torch::from_blob(adv.data(), {B}, f32).to(device);
  if (device.is_cpu()) {  // from_blob views the vectors that die here
    for (auto* t : {&mb.input_ids, &mb.attention_mask, &mb.response_index, &mb.wanted, &mb.loss_mask,
                    &mb.old_logprobs, &mb.advantages}) {
      *t = t->clone();
    }
  }
  return mb;
}

// The step's summed statistics, in this order.
// kGap is a plain sum of |sampler - trainer| over model tokens (divided by kTokens at the end).
enum StatIndex { kLoss, kPg, kKl, kEntropy, kPpoKl, kTokens, kClipped, kGap, kSums };

Status torch_error(const std::string& doing, const std::exception& e) {
  const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
  return {StatusCode::kInternal,
          doing + ": " + (c10_error ? c10_error->what_without_backtrace() : e.what())};
}

// Mixed precision: adds a parameter's 16-bit gradient into its master's (float32) and frees it.
void move_gradient_to_master(const torch::Tensor& param, const torch::Tensor& master) {
  torch::NoGradGuard no_grad;
  auto& g = param.mutable_grad();
  if (!g.defined()) return;
  auto& m = master.mutable_grad();
  if (m.defined()) {
    m.add_(g);
  } else {
    m = g.to(master.scalar_type());
  }
  g = torch::Tensor();
}

}  // namespace

// Data parallel: the masters' gradients summed over the ranks in buckets of about bucket_bytes, in the
// reverse of the parameters' order (roughly the order the backward produces them). A post-accumulate-
// grad hook on each policy parameter moves its gradient into its master (mixed precision) and, during
// the last micro-batch's backward, counts it ready; a bucket whose gradients are all ready is started at
// once, while the backward goes on, and buckets start strictly in order, so every rank issues the same
// collectives in the same order. What the backward did not start (a parameter without a gradient, a
// rank with nothing to train on, a failure) finish() starts at the end with zeros, so no rank waits.
// A bucket that cannot be started at all (no memory for its flat copy) fails the step on this rank;
// the other ranks then fail on the group's timeout, as after any failed collective.
class PolicyTrainer::GradientBuckets {
 public:
  GradientBuckets(std::vector<torch::Tensor> params, std::vector<torch::Tensor> masters, bool mixed, GradientSync& sync,
                  int64_t bucket_bytes)
      : params_(std::move(params)), masters_(std::move(masters)), mixed_(mixed), sync_(sync),
        bucket_of_(masters_.size()), had_gradient_(masters_.size(), false) {
    int64_t bytes = 0;
    for (size_t k = masters_.size(); k-- > 0;) {
      const int64_t size = masters_[k].numel() * static_cast<int64_t>(masters_[k].element_size());
      if (buckets_.empty() || (bytes > 0 && bytes + size > bucket_bytes)) {
        buckets_.emplace_back();
        bytes = 0;
      }
      buckets_.back().push_back(k);
      bucket_of_[k] = buckets_.size() - 1;
      bytes += size;
    }
    waiting_.resize(buckets_.size());
    reset();
    for (size_t k = 0; k < params_.size(); ++k) {
      torch::autograd::impl::set_post_acc_grad_hooks(params_[k], std::make_unique<Hook>(this, k));
    }
  }
  ~GradientBuckets() {
    for (const auto& p : params_) torch::autograd::impl::set_post_acc_grad_hooks(p, nullptr);
  }
  GradientBuckets(const GradientBuckets&) = delete;
  GradientBuckets& operator=(const GradientBuckets&) = delete;

  size_t buckets() const { return buckets_.size(); }
  // Before each micro-batch's backward: `last` = its gradients complete this rank's share.
  void begin(bool last) { syncing_ = last; }

  // After the last backward, or a failure: starts the buckets not started yet, waits for all, and
  // makes ready for the next step. had_gradient(k): whether master k had a gradient here.
  Status finish() {
    in_backward_ = static_cast<int64_t>(next_);
    for (size_t b = next_; b < buckets_.size(); ++b) waiting_[b] = 0;
    start_ready();
    Status status = failure_;
    for (auto& pending : pending_) {
      if (Status s = pending->finish(); status.ok() && !s.ok()) status = s;
    }
    reset();
    return status;
  }
  bool had_gradient(size_t k) const { return had_gradient_[k]; }
  int64_t started_in_backward() const { return in_backward_; }  // by the last finish()

 private:
  struct Hook final : torch::autograd::PostAccumulateGradHook {
    Hook(GradientBuckets* owner, size_t k) : owner(owner), k(k) {}
    void operator()(const torch::autograd::Variable&) override { owner->accumulated(k); }
    GradientBuckets* owner;
    size_t k;
  };

  void reset() {
    for (size_t b = 0; b < buckets_.size(); ++b) waiting_[b] = buckets_[b].size();
    next_ = 0;
    pending_.clear();
    failure_ = Status();
    syncing_ = false;
  }

  // The backward has added parameter k's gradient of this micro-batch into params_[k].grad.
  void accumulated(size_t k) {
    if (mixed_) move_gradient_to_master(params_[k], masters_[k]);  // its memory is free again
    if (!syncing_) return;
    if (--waiting_[bucket_of_[k]] == 0) start_ready();
  }

  void start_ready() {
    for (; next_ < buckets_.size() && waiting_[next_] == 0; ++next_) {
      std::vector<torch::Tensor> grads;
      for (const size_t k : buckets_[next_]) {
        auto& grad = masters_[k].mutable_grad();
        had_gradient_[k] = grad.defined();
        if (!grad.defined()) grad = torch::zeros_like(masters_[k]);
        grads.push_back(grad);
      }
      auto pending = sync_.start_all_reduce(grads);
      if (!pending.ok()) {
        if (failure_.ok()) failure_ = pending.status().with_context("policy update: summing the gradients");
        continue;
      }
      pending_.push_back(std::move(*pending));
    }
  }

  std::vector<torch::Tensor> params_, masters_;
  bool mixed_;
  GradientSync& sync_;
  std::vector<std::vector<size_t>> buckets_;  // master indices, last parameters first
  std::vector<size_t> bucket_of_;
  std::vector<bool> had_gradient_;
  std::vector<size_t> waiting_;  // per bucket: gradients not ready yet in the last micro-batch
  size_t next_ = 0;              // the first bucket not started
  std::vector<std::unique_ptr<GradientSync::Pending>> pending_;
  Status failure_;
  bool syncing_ = false;
  int64_t in_backward_ = 0;
};

PolicyTrainer::PolicyTrainer(Qwen2Model& policy, const PolicyTrainerOptions& options,
                             const Qwen2Model* reference)
    : policy_(&policy), reference_(reference), options_(options) {
  policy.set_requires_grad(true);
  const auto master_type = scalar_type(options.train.master_dtype);
  for (const auto& [name, tensor] : policy.named_parameters()) {
    names_.push_back(name);
    params_.push_back(tensor);
    // float32 masters for 16-bit parameters; float32 and float64 parameters are their own masters
    const bool narrow = tensor.scalar_type() == torch::kBFloat16 || tensor.scalar_type() == torch::kHalf;
    mixed_ = mixed_ || (narrow && master_type == torch::kFloat32);
  }
  if (mixed_) {
    torch::NoGradGuard no_grad;
    for (const auto& p : params_) masters_.push_back(p.detach().to(master_type).clone());
  } else {
    masters_ = params_;
  }
  const auto& train = options.train;
  torch::optim::AdamWOptions adamw(train.lr);
  adamw.betas({train.beta1, train.beta2}).weight_decay(train.weight_decay);
  optimizer_ = std::make_unique<torch::optim::AdamW>(masters_, adamw);
  if (options.sync) {
    buckets_ = std::make_shared<GradientBuckets>(params_, masters_, mixed_, *options.sync, options.bucket_bytes);
  }
}

void PolicyTrainer::copy_masters_to_policy() {
  if (!mixed_) return;
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) params_[i].detach().copy_(masters_[i]);
}

void PolicyTrainer::add_gradients_to_masters() {
  if (!mixed_) return;
  for (size_t i = 0; i < params_.size(); ++i) move_gradient_to_master(params_[i], masters_[i]);
}

Expected<PolicyTrainer> PolicyTrainer::create(Qwen2Model& policy, const PolicyTrainerOptions& options,
                                              const Qwen2Model* reference) {
  if (!(options.temperature > 0)) {
    return invalid_argument("policy trainer: temperature must be > 0 (got " +
                            std::to_string(options.temperature) +
                            "); greedy rollouts cannot be trained on");
  }
  if (options.train.micro_batch < 1) {
    return invalid_argument("policy trainer: train.micro_batch must be >= 1 (got " +
                            std::to_string(options.train.micro_batch) + ")");
  }
  if (options.algorithm.kl_coef > 0 && reference == nullptr) {
    return invalid_argument("policy trainer: algorithm.kl_coef > 0 needs a reference model");
  }
  if (reference == &policy) {
    return invalid_argument("policy trainer: the reference model must be a separate, frozen copy");
  }
  const auto master = scalar_type(options.train.master_dtype);
  for (const auto& [name, p] : policy.named_parameters()) {
    if (master != torch::kFloat32 && p.scalar_type() != master) {
      return invalid_argument("policy trainer: train.master_dtype must be float32 or the policy's dtype (" + name +
                              " is " + std::string(c10::toString(p.scalar_type())) + ")");
    }
  }
  if (reference != nullptr && reference->config().vocab_size != policy.config().vocab_size) {
    return invalid_argument("policy trainer: reference vocabulary " +
                            std::to_string(reference->config().vocab_size) + " differs from the policy's " +
                            std::to_string(policy.config().vocab_size));
  }
  try {
    PolicyTrainer trainer(policy, options, reference);
    if (options.sync) {
      const auto status = options.sync->broadcast_from_rank0(trainer.masters_);
      if (!status.ok()) return status.with_context("policy trainer: copying rank 0's parameters");
      trainer.copy_masters_to_policy();
    }
    return trainer;
  } catch (const std::exception& e) {
    return torch_error("policy trainer: creating the optimizer", e);
  }
}

double PolicyTrainer::learning_rate() const {
  const auto& train = options_.train;
  if (train.warmup_steps > 0 && step_count_ < train.warmup_steps) {
    return train.lr * static_cast<double>(step_count_ + 1) / train.warmup_steps;
  }
  const int64_t decay = train.steps - train.warmup_steps;
  if (train.lr_schedule != config::LrSchedule::kLinear || decay <= 0) return train.lr;
  const double done = std::min(1.0, static_cast<double>(step_count_ - train.warmup_steps) / static_cast<double>(decay));
  return train.lr * (1.0 - 0.9 * done);
}

Status PolicyTrainer::check_samples(const std::vector<PolicySample>& samples) const {
  // A rank's share may be empty; a whole step may not.
  if (samples.empty() && !options_.sync) return invalid_argument("policy update: no samples");
  const int64_t vocab = policy_->config().vocab_size;
  for (size_t i = 0; i < samples.size(); ++i) {
    const auto& s = samples[i];
    const std::string where = "policy update: sample " + std::to_string(i) + ": ";
    if (s.prompt.empty()) return invalid_argument(where + "empty prompt");
    if (s.response.empty()) return invalid_argument(where + "empty response");
    if (s.loss_mask.size() != s.response.size() || s.old_logprobs.size() != s.response.size()) {
      return invalid_argument(where + "loss_mask (" + std::to_string(s.loss_mask.size()) +
                              ") and old_logprobs (" + std::to_string(s.old_logprobs.size()) +
                              ") must have one entry per response token (" +
                              std::to_string(s.response.size()) + ")");
    }
    for (const auto* ids : {&s.prompt, &s.response}) {
      for (const int32_t id : *ids) {
        if (id < 0 || id >= vocab) {
          return invalid_argument(where + "token id " + std::to_string(id) + " outside the vocabulary [0, " +
                                  std::to_string(vocab) + ")");
        }
      }
    }
    for (size_t j = 0; j < s.response.size(); ++j) {
      if (s.loss_mask[j] && !std::isfinite(s.old_logprobs[j])) {
        return invalid_argument(where + "old log-prob of response token " + std::to_string(j) +
                                " is not finite");
      }
    }
    if (!std::isfinite(s.advantage)) return invalid_argument(where + "advantage is not finite");
  }
  return {};
}

Expected<StepStats> PolicyTrainer::compute_gradients(const std::vector<PolicySample>& samples) {
  const auto start = std::chrono::steady_clock::now();
  const auto& sync = options_.sync;
  const auto device = policy_->device();

  // ---- the whole step's normaliser (over every rank), so that micro-batch losses add up to the full batch's ----
  auto options = GrpoLossOptions::from_config(options_.algorithm);
  const Status refused = check_samples(samples);
  double normaliser = 0;
  if (refused.ok()) {
    for (const auto& s : samples) {
      const auto n = std::count_if(s.loss_mask.begin(), s.loss_mask.end(), [](uint8_t m) { return m != 0; });
      normaliser += options.loss_agg == config::LossAggregation::kTokenMean ? n : (n > 0 ? 1 : 0);
    }
  }
  if (sync) {  // every rank takes part, also one whose samples are refused, so that none waits forever
    double global[2] = {normaliser, refused.ok() ? 0.0 : 1.0};
    try {
      auto agreed = torch::tensor({global[0], global[1]}, torch::kFloat64).to(device);
      TORL_RETURN_IF_ERROR(sync->all_reduce({agreed}).with_context("policy update: summing the normaliser"));
      agreed = agreed.to(torch::kCPU);
      global[0] = agreed[0].item<double>(), global[1] = agreed[1].item<double>();
    } catch (const std::exception& e) {
      return torch_error("policy update: summing the normaliser", e);
    }
    if (refused.ok() && global[1] > 0) {
      return invalid_argument("policy update: another rank's samples were refused (see its error)");
    }
    normaliser = global[0];
  }
  TORL_RETURN_IF_ERROR(refused);
  if (normaliser == 0) return Status(StatusCode::kAborted, "policy update: no model token in the batch (all masked)");
  options.normaliser = normaliser;

  // ---- forward and backward, one micro-batch at a time ----
  StepStats stats;
  Status failure;
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64).device(device);
  // Sums over micro-batches (each term is already divided by the whole step's normaliser), and the
  // ratio's extremes as [max, -min] (both reduce with a max over ranks); float64 on the device, read
  // back once at the end.
  auto sums = torch::zeros({kSums}, f64), ratio_extremes = torch::full({2}, -INFINITY, f64);
  try {
    optimizer_->zero_grad();
    if (mixed_) {
      for (auto& p : params_) p.mutable_grad() = torch::Tensor();
    }
    auto ratio_min = torch::full({}, INFINITY, f64), ratio_max = torch::full({}, -INFINITY, f64);
    const auto plan = plan_micro_batches(samples, options_.train.micro_batch, options_.train.micro_batch_tokens);
    for (size_t m = 0; m < plan.size(); ++m) {
      const auto mb = build_micro_batch(samples, plan[m], device);
      const LogprobOptions scoring{.temperature = options_.temperature,
                                   .shared_prefix = mb.shared_prefix,
                                   .wanted = mb.wanted,
                                   .chunk_positions = options_.train.logits_chunk};
      const auto lp = token_logprobs(*policy_, mb.input_ids, mb.attention_mask, mb.position_ids, scoring);
      const auto new_logprobs = lp.logprobs.gather(1, mb.response_index);  // [B, R]
      const auto entropy = lp.entropy.gather(1, mb.response_index);
      options.entropy = options.entropy_coef != 0 ? entropy : entropy.detach();
      if (reference_ != nullptr) {
        torch::NoGradGuard no_grad;
        const auto ref_device = reference_->device();
        auto ref_scoring = scoring;
        ref_scoring.wanted = mb.wanted.to(ref_device);
        const auto ref = token_logprobs(*reference_, mb.input_ids.to(ref_device), mb.attention_mask.to(ref_device),
                                        mb.position_ids.to(ref_device), ref_scoring);
        options.ref_logprobs = ref.logprobs.gather(1, mb.response_index.to(ref_device)).to(device);
      }
      // π_old = the forward's own values (trainer: the policy before this step's only update;
      // supervised: the ratio is 1 with the gradient of the log-probs, so each masked token's gradient
      // is -advantage * d log p, the cross-entropy's with advantage 1) or the sampler's
      const bool own = options_.supervised || options_.algorithm.old_logprobs == config::OldLogprobs::kTrainer;
      const auto old = own ? new_logprobs.detach() : mb.old_logprobs;
      const auto out = grpo_loss(new_logprobs, old, mb.advantages, mb.loss_mask, options);
      if (buckets_) buckets_->begin(m + 1 == plan.size());  // the last: its gradients go to the ranks' sums
      out.loss.backward();
      add_gradients_to_masters();
      const auto gap = ((mb.old_logprobs - new_logprobs.detach().to(torch::kFloat32)).abs() * mb.loss_mask).sum();
      // supervised, the loss shown is the cross-entropy itself (aggregated as the loss), not -advantage
      const auto loss = options_.supervised
                            ? (new_logprobs.detach() * mb.loss_mask * mb.advantages.unsqueeze(1)).sum().neg() / normaliser
                            : out.loss.detach();

      sums = sums + torch::stack({loss, out.pg_loss, out.kl, out.entropy, out.ppo_kl,
                                  out.tokens, out.clipped_tokens, gap.to(out.tokens.scalar_type())})
                        .to(torch::kFloat64);
      // A micro-batch without model tokens reports ratios of 1; it must not move the extremes.
      const auto has_tokens = out.tokens > 0;
      ratio_min = torch::where(has_tokens, torch::min(ratio_min, out.ratio_min.to(torch::kFloat64)), ratio_min);
      ratio_max = torch::where(has_tokens, torch::max(ratio_max, out.ratio_max.to(torch::kFloat64)), ratio_max);
      stats.total_tokens += mb.tokens;
      stats.padded_tokens += mb.padded;
      ++stats.micro_batches;
    }
    ratio_extremes = torch::stack({ratio_max, -ratio_min});
  } catch (const std::exception& e) {
    failure = torch_error("policy update: forward/backward", e);
  }

  // ---- data parallel: the statistics and gradients of every rank's share ----
  if (buckets_) {  // also after a failure: the buckets not started in the backward start now, with zeros
    TORL_RETURN_IF_ERROR(buckets_->finish());
    stats.grad_buckets = static_cast<int64_t>(buckets_->buckets());
    stats.grad_buckets_in_backward = buckets_->started_in_backward();
  }
  if (sync) {
    TORL_RETURN_IF_ERROR(combine_over_ranks(sums, ratio_extremes, stats, failure));
  }
  TORL_RETURN_IF_ERROR(failure);
  try {
    const auto all = torch::cat({sums, ratio_extremes}).to(torch::kCPU);
    const auto v = all.accessor<double, 1>();
    stats.loss = v[kLoss], stats.pg_loss = v[kPg], stats.kl = v[kKl], stats.entropy = v[kEntropy];
    stats.ppo_kl = v[kPpoKl];
    stats.tokens = static_cast<int64_t>(v[kTokens]);
    stats.clip_fraction = v[kTokens] > 0 ? v[kClipped] / v[kTokens] : 0.0;
    stats.sampler_gap = v[kTokens] > 0 ? v[kGap] / v[kTokens] : 0.0;
    stats.ratio_max = v[kSums], stats.ratio_min = -v[kSums + 1];
    if (stats.tokens == 0) stats.ratio_min = stats.ratio_max = 1.0;
  } catch (const std::exception& e) {
    return torch_error("policy update: reading the statistics", e);
  }
  stats.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return stats;
}

Status PolicyTrainer::combine_over_ranks(torch::Tensor& sums, torch::Tensor& ratio_extremes,
                                         StepStats& stats, const Status& local_failure) {
  const auto& sync = options_.sync;
  const auto device = policy_->device();
  // One sum for the statistics, the failure flag and which gradients exist anywhere (a parameter
  // unused on every rank keeps no gradient, as in one process); one max for the ratio extremes.
  torch::Tensor shared;
  try {
    std::vector<double> extra = {static_cast<double>(stats.total_tokens), static_cast<double>(stats.padded_tokens),
                                 local_failure.ok() ? 0.0 : 1.0};
    for (size_t i = 0; i < masters_.size(); ++i) extra.push_back(buckets_->had_gradient(i) ? 1.0 : 0.0);
    shared = torch::cat({sums, torch::tensor(extra, torch::kFloat64).to(device)});
  } catch (const std::exception& e) {
    return torch_error("policy update: gathering the statistics", e);
  }
  TORL_RETURN_IF_ERROR(sync->all_reduce({shared}).with_context("policy update: summing the statistics"));
  TORL_RETURN_IF_ERROR(sync->all_reduce({ratio_extremes}, GradientSync::Op::kMax)
                           .with_context("policy update: the ratio extremes"));
  try {
    const auto extra = shared.narrow(0, kSums, shared.size(0) - kSums).to(torch::kCPU);
    const auto v = extra.accessor<double, 1>();
    if (v[2] > 0) {
      optimizer_->zero_grad();
      if (!local_failure.ok()) return local_failure;
      return Status(StatusCode::kInternal, "policy update: another rank failed in forward/backward (see its error)");
    }
    sums = shared.narrow(0, 0, kSums);
    stats.total_tokens = static_cast<int64_t>(v[0]);
    stats.padded_tokens = static_cast<int64_t>(v[1]);
    // a parameter without a gradient on every rank keeps none, as in one process (AdamW skips it)
    for (size_t i = 0; i < masters_.size(); ++i) {
      if (v[3 + i] == 0) masters_[i].mutable_grad() = torch::Tensor();
    }
  } catch (const std::exception& e) {
    return torch_error("policy update: reading the summed statistics", e);
  }
  return {};
}

Expected<StepStats> PolicyTrainer::step(const std::vector<PolicySample>& samples) {
  const auto start = std::chrono::steady_clock::now();
  auto stats = compute_gradients(samples);
  if (!stats.ok()) return stats.status();
  try {
    // Global L2 norm over every parameter's gradient (before clipping).
    std::vector<torch::Tensor> norms;
    for (const auto& p : masters_) {
      if (p.grad().defined()) norms.push_back(p.grad().detach().to(torch::kFloat64).norm());
    }
    const double grad_norm = norms.empty() ? 0.0 : torch::stack(norms).norm().item<double>();
    if (!std::isfinite(grad_norm)) {
      optimizer_->zero_grad();
      return Status(StatusCode::kAborted,
                    "policy update at step " + std::to_string(step_count_) + ": gradient norm is " +
                        std::to_string(grad_norm) + "; the step was skipped (check the learning rate and dtype)");
    }
    const double max_norm = options_.train.grad_clip;
    if (max_norm > 0 && grad_norm > max_norm) {
      const double scale = max_norm / (grad_norm + 1e-6);
      torch::NoGradGuard no_grad;
      for (auto& p : masters_) {
        if (p.grad().defined()) p.mutable_grad().mul_(scale);
      }
    }
    const double lr = learning_rate();
    for (auto& group : optimizer_->param_groups()) group.options().set_lr(lr);
    optimizer_->step();
    copy_masters_to_policy();
    ++step_count_;
    stats->grad_norm = grad_norm;
    stats->lr = lr;
  } catch (const std::exception& e) {
    return torch_error("policy update at step " + std::to_string(step_count_) + ": optimizer step", e);
  }
  stats->ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return stats;
}

TensorMap PolicyTrainer::optimizer_state() const {
  TensorMap out;
  const auto& state = optimizer_->state();
  for (size_t i = 0; i < masters_.size(); ++i) {
    if (mixed_) out["master/" + names_[i]] = masters_[i].detach().to(torch::kCPU).clone();
    const auto it = state.find(state_key(masters_[i]));
    if (it == state.end()) continue;
    const auto& s = static_cast<const torch::optim::AdamWParamState&>(*it->second);
    out["exp_avg/" + names_[i]] = s.exp_avg().detach().to(torch::kCPU).clone();
    out["exp_avg_sq/" + names_[i]] = s.exp_avg_sq().detach().to(torch::kCPU).clone();
    out["step/" + names_[i]] = torch::full({1}, s.step(), torch::TensorOptions().dtype(torch::kInt64));
  }
  return out;
}

Status PolicyTrainer::load_optimizer_state(const TensorMap& state) {
  // Check everything and build the new state first, so that a bad map changes nothing.
  std::vector<std::unique_ptr<torch::optim::AdamWParamState>> loaded;
  std::vector<torch::Tensor> masters;  // mixed precision: the new master weights
  std::set<std::string> used;
  try {
    for (size_t i = 0; i < masters_.size(); ++i) {
      const auto& param = masters_[i];
      auto entry = [&](const std::string& kind) -> Expected<torch::Tensor> {
        const std::string key = kind + "/" + names_[i];
        const auto it = state.find(key);
        if (it == state.end()) return not_found("optimizer state: missing " + key);
        used.insert(key);
        const std::vector<int64_t> want = kind == "step" ? std::vector<int64_t>{1} : param.sizes().vec();
        if (it->second.sizes() != want) {
          return invalid_argument("optimizer state: shape mismatch for " + key + " " +
                                  shape_string(it->second.sizes()) + " vs " + shape_string(want));
        }
        return it->second;
      };
      auto exp_avg = entry("exp_avg");
      if (!exp_avg.ok()) return exp_avg.status();
      auto exp_avg_sq = entry("exp_avg_sq");
      if (!exp_avg_sq.ok()) return exp_avg_sq.status();
      auto step = entry("step");
      if (!step.ok()) return step.status();
      if (mixed_) {
        auto master = entry("master");
        if (!master.ok()) {
          return Status(master.status().code(), master.status().message() +
                                                    " (this run keeps master weights, train.master_dtype, and the "
                                                    "checkpoint has none)");
        }
        masters.push_back(master->to(param.device(), param.scalar_type()).clone());
      }
      auto s = std::make_unique<torch::optim::AdamWParamState>();
      s->step(step->to(torch::kInt64).item<int64_t>());
      s->exp_avg(exp_avg->to(param.device(), param.scalar_type()).clone());
      s->exp_avg_sq(exp_avg_sq->to(param.device(), param.scalar_type()).clone());
      loaded.push_back(std::move(s));
    }
  } catch (const std::exception& e) {
    return torch_error("optimizer state", e);
  }
  for (const auto& [key, tensor] : state) {
    if (!used.count(key)) {
      return invalid_argument("optimizer state: unexpected tensor " + key +
                              " (a checkpoint of another model?)");
    }
  }
  try {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < masters.size(); ++i) masters_[i].copy_(masters[i]);
    copy_masters_to_policy();
  } catch (const std::exception& e) {
    return torch_error("optimizer state: master weights", e);
  }
  auto& live = optimizer_->state();
  live.clear();
  for (size_t i = 0; i < masters_.size(); ++i) live[state_key(masters_[i])] = std::move(loaded[i]);
  return {};
}

}  // namespace torl::model
