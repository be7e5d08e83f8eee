// Data-parallel policy updates on the tiny fixture model (../shared/fixtures/tiny-qwen2): two ranks,
// run as two threads with their own model copies and a Gloo group over 127.0.0.1, each stepping on
// half of a batch, must end where one trainer stepping on the whole batch ends.
#include <algorithm>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "model/data_parallel.hpp"
#include "model/logprobs.hpp"
#include "model/policy_trainer.hpp"
#include "tests/model/policy_samples.hpp"

// After the LibTorch headers: glog (through c10) defines its own CHECK (see qwen2_test.cpp).
#include <doctest/doctest.h>

namespace torl::model {
namespace {

using testing::load_tiny;

// Four samples with different prompt and response lengths (so the two halves have different token
// counts and a rank's own normaliser would be wrong), tool output inside responses, advantages of
// both signs, and old log-probs within +-0.4 of the current ones (some ratios clipped).
std::vector<PolicySample> make_samples(const Qwen2Model& model) {
  return testing::make_policy_samples(model, {.seed = 777,
                                              .prompt_len = {3, 6, 2, 5},
                                              .response_len = {9, 4, 7, 3},
                                              .advantage = {1.1f, -0.7f, 0.4f, -1.3f},
                                              .tool_every = 3,
                                              .tool_at = 1,
                                              .offset = 0.4});
}

PolicyTrainerOptions trainer_options(int micro_batch) {
  PolicyTrainerOptions o;
  o.train.lr = 1e-3;
  o.train.micro_batch = micro_batch;
  o.train.warmup_steps = 0;
  o.train.grad_clip = 1.0;
  o.algorithm.clip_low = 0.2;
  o.algorithm.clip_high = 0.28;
  // the samples' own old log-probs (off the policy by an offset), so that ratios and clipping are exercised
  o.algorithm.old_logprobs = config::OldLogprobs::kSampler;
  o.algorithm.entropy_coef = 0.01;
  return o;
}

// What one rank (or the single process) saw: the gradient of the first step, then `steps` steps.
struct Run {
  Status status;
  TensorMap gradients;           // after compute_gradients on the first call
  std::vector<StepStats> stats;  // one per step
};

Run train(Qwen2Model& model, const PolicyTrainerOptions& options, const std::vector<PolicySample>& samples,
          int steps) {
  Run run;
  auto trainer = PolicyTrainer::create(model, options);
  if (!trainer.ok()) return run.status = trainer.status(), run;
  if (auto g = trainer->compute_gradients(samples); !g.ok()) return run.status = g.status(), run;
  for (const auto& [name, p] : model.named_parameters()) {
    if (p.grad().defined()) run.gradients[name] = p.grad().clone();
  }
  for (int i = 0; i < steps; ++i) {
    auto stats = trainer->step(samples);
    if (!stats.ok()) return run.status = stats.status(), run;
    run.stats.push_back(*stats);
  }
  return run;
}

// Each rank in its own thread, as its own process would: join the group, create the trainer (which
// copies rank 0's weights), train on its share.
std::vector<Run> train_ranks(std::vector<Qwen2Model>& models, const PolicyTrainerOptions& options,
                             const std::vector<std::vector<PolicySample>>& shares, int steps) {
  const int world = static_cast<int>(models.size());
  const uint16_t port = free_loopback_port();
  REQUIRE(port != 0);
  std::vector<Run> runs(models.size());
  std::vector<std::thread> threads;
  for (int rank = 0; rank < world; ++rank) {
    threads.emplace_back([&, rank] {
      auto group = make_gloo_group(rank, world, "127.0.0.1", port, std::chrono::seconds(30));
      if (!group.ok()) {
        runs[rank].status = group.status();
        return;
      }
      auto o = options;
      o.sync = *group;
      runs[rank] = train(models[rank], o, shares[rank], steps);
    });
  }
  for (auto& t : threads) t.join();
  return runs;
}

double max_difference(const TensorMap& a, const TensorMap& b) {
  REQUIRE(a.size() == b.size());
  double diff = 0;
  for (const auto& [name, t] : a) diff = std::max(diff, (t - b.at(name)).abs().max().item<double>());
  return diff;
}

double max_abs(const TensorMap& a) {
  double m = 0;
  for (const auto& [name, t] : a) m = std::max(m, t.abs().max().item<double>());
  return m;
}

std::vector<Qwen2Model> two_copies(torch::ScalarType dtype) {
  std::vector<Qwen2Model> models;
  models.push_back(load_tiny(dtype));
  models.push_back(load_tiny(dtype));
  torch::NoGradGuard no_grad;  // rank 1 starts elsewhere: the trainer must copy rank 0's weights
  for (auto& [name, p] : models[1].named_parameters()) p.add_(0.05);
  return models;
}

TEST_SUITE("model") {
  TEST_CASE("two data-parallel ranks on half a batch each step like one trainer on the whole batch") {
    for (const auto dtype : {torch::kFloat32, torch::kFloat64}) {
      const bool f32 = dtype == torch::kFloat32;
      INFO((f32 ? "float32" : "float64"));
      const double weight_tolerance = f32 ? 1e-5 : 1e-10, grad_tolerance = f32 ? 1e-5 : 1e-10;
      auto single = load_tiny(dtype);
      const auto samples = make_samples(single);
      const int steps = 3;
      const auto whole = train(single, trainer_options(2), samples, steps);
      REQUIRE_MESSAGE(whole.status.ok(), whole.status.to_string());

      auto models = two_copies(dtype);
      const std::vector<std::vector<PolicySample>> shares = {{samples[0], samples[1]}, {samples[2], samples[3]}};
      const auto ranks = train_ranks(models, trainer_options(2), shares, steps);
      for (const auto& run : ranks) REQUIRE_MESSAGE(run.status.ok(), run.status.to_string());

      // The gradient of the first step: the sum of both halves with the whole batch's normaliser.
      const double grad_scale = max_abs(whole.gradients);
      CHECK(grad_scale > 1e-3);
      for (const auto& run : ranks) {
        const double diff = max_difference(run.gradients, whole.gradients);
        MESSAGE("max |grad(rank) - grad(single)| = " << diff << " (max |grad| " << grad_scale << ")");
        CHECK(diff <= grad_tolerance * grad_scale);
      }
      // Global statistics, the same on both ranks.
      for (const auto& run : ranks) {
        for (int i = 0; i < steps; ++i) {
          const auto &a = run.stats[i], &b = whole.stats[i];
          CHECK(a.tokens == b.tokens);
          CHECK(a.total_tokens == b.total_tokens);
          CHECK(a.clip_fraction == doctest::Approx(b.clip_fraction).epsilon(1e-12));
          CHECK(a.loss == doctest::Approx(b.loss).epsilon(1e-5));
          CHECK(a.entropy == doctest::Approx(b.entropy).epsilon(1e-5));
          CHECK(a.ppo_kl == doctest::Approx(b.ppo_kl).epsilon(1e-4));
          CHECK(a.grad_norm == doctest::Approx(b.grad_norm).epsilon(1e-5));
          CHECK(a.ratio_min == doctest::Approx(b.ratio_min).epsilon(1e-5));
          CHECK(a.ratio_max == doctest::Approx(b.ratio_max).epsilon(1e-5));
        }
      }
      CHECK(whole.stats[0].tokens == 16);  // 23 response tokens, 7 of them tool output
      CHECK(whole.stats[0].clip_fraction > 0.0);
      CHECK(whole.stats[0].grad_norm > 1.0);  // clipping is active: the norm must be global

      // The weights after the steps: the ranks agree exactly, and with the single trainer.
      CHECK(max_difference(models[0].named_parameters(), models[1].named_parameters()) == 0.0);
      const double diff = max_difference(models[0].named_parameters(), single.named_parameters());
      MESSAGE("max |w(rank 0) - w(single)| after " << steps << " steps: " << diff);
      CHECK(diff <= weight_tolerance);
      auto untrained = load_tiny(dtype);
      CHECK(max_difference(untrained.named_parameters(), single.named_parameters()) > 1e-3);
    }
  }

  TEST_CASE("data parallel: micro-batches of 1 or 2, and an empty share, give the same step") {
    // float64: other micro-batches pad to other shapes, so float32 sums differ in the last bits, and
    // Adam's first steps (g / sqrt(g^2)) blow that up where a gradient is nearly 0.
    const auto dtype = torch::kFloat64;
    auto reference = load_tiny(dtype);
    const auto samples = make_samples(reference);
    const std::vector<std::vector<PolicySample>> halves = {{samples[0], samples[1]}, {samples[2], samples[3]}};

    auto micro2 = two_copies(dtype);
    const auto runs2 = train_ranks(micro2, trainer_options(2), halves, 2);
    auto micro1 = two_copies(dtype);
    const auto runs1 = train_ranks(micro1, trainer_options(1), halves, 2);
    auto lopsided = two_copies(dtype);  // rank 0 takes everything (as 2 micro-batches of 2)
    const auto runs_lopsided = train_ranks(lopsided, trainer_options(2), {samples, {}}, 2);
    for (const auto* runs : {&runs2, &runs1, &runs_lopsided}) {
      for (const auto& run : *runs) REQUIRE_MESSAGE(run.status.ok(), run.status.to_string());
    }
    const double scale = max_abs(runs2[0].gradients);
    const double grad_diff = max_difference(runs1[0].gradients, runs2[0].gradients);
    MESSAGE("max |grad(micro 1) - grad(micro 2)| = " << grad_diff << " (max |grad| " << scale << ")");
    CHECK(grad_diff <= 1e-10 * scale);
    CHECK(max_difference(runs_lopsided[1].gradients, runs2[0].gradients) <= 1e-10 * scale);
    CHECK(runs1[1].stats[1].loss == doctest::Approx(runs2[1].stats[1].loss).epsilon(1e-10));
    CHECK(runs_lopsided[1].stats[0].total_tokens == runs2[0].stats[0].total_tokens);

    const double diff = max_difference(micro1[1].named_parameters(), micro2[1].named_parameters());
    MESSAGE("max |w(micro 1) - w(micro 2)| after 2 steps: " << diff);
    CHECK(diff <= 1e-10);
    CHECK(max_difference(lopsided[1].named_parameters(), micro2[1].named_parameters()) <= 1e-10);
    CHECK(max_difference(micro2[0].named_parameters(), micro2[1].named_parameters()) == 0.0);
  }

  TEST_CASE("data parallel: gradients summed in a bucket per parameter, started during the backward, step alike") {
    const auto dtype = torch::kFloat64;
    auto reference = load_tiny(dtype);
    const auto samples = make_samples(reference);
    const size_t parameters = reference.named_parameters().size();
    const std::vector<std::vector<PolicySample>> halves = {{samples[0], samples[1]}, {samples[2], samples[3]}};
    auto per_parameter = trainer_options(2);
    per_parameter.bucket_bytes = 1;

    auto one = two_copies(dtype);
    const auto runs_one = train_ranks(one, trainer_options(2), halves, 2);
    auto many = two_copies(dtype);
    const auto runs_many = train_ranks(many, per_parameter, halves, 2);
    auto lopsided = two_copies(dtype);  // rank 1 has nothing: its backward starts no bucket
    const auto runs_lopsided = train_ranks(lopsided, per_parameter, {samples, {}}, 2);
    for (const auto* runs : {&runs_one, &runs_many, &runs_lopsided}) {
      for (const auto& run : *runs) REQUIRE_MESSAGE(run.status.ok(), run.status.to_string());
    }
    for (const auto& run : runs_one) {
      CHECK(run.stats[0].grad_buckets == 1);  // the tiny model fits one 25 MiB bucket
      CHECK(run.stats[0].grad_buckets_in_backward == 1);
    }
    for (const auto& run : runs_many) {
      CHECK(run.stats[0].grad_buckets == static_cast<int64_t>(parameters));
      CHECK(run.stats[0].grad_buckets_in_backward == static_cast<int64_t>(parameters));  // every one used
    }
    CHECK(runs_lopsided[0].stats[0].grad_buckets_in_backward == static_cast<int64_t>(parameters));
    CHECK(runs_lopsided[1].stats[0].grad_buckets_in_backward == 0);
    // each element is the same sum of the same two terms, whatever bucket it travels in
    CHECK(max_difference(runs_many[0].gradients, runs_one[0].gradients) == 0.0);
    CHECK(max_difference(many[1].named_parameters(), one[1].named_parameters()) == 0.0);
    CHECK(max_difference(lopsided[1].named_parameters(), one[1].named_parameters()) <= 1e-10);
    CHECK(max_difference(many[0].named_parameters(), many[1].named_parameters()) == 0.0);
  }

  TEST_CASE("data parallel in bfloat16 over Gloo: float32 gradients and masters, the ranks end equal") {
    // Gloo has no bfloat16 sum; the masters' gradients are float32 and the start broadcast is widened.
    auto reference = load_tiny(torch::kFloat32);
    const auto samples = make_samples(reference);
    auto single = load_tiny(torch::kBFloat16);
    const auto whole = train(single, trainer_options(2), samples, 3);
    REQUIRE_MESSAGE(whole.status.ok(), whole.status.to_string());
    auto models = two_copies(torch::kBFloat16);
    const auto runs = train_ranks(models, trainer_options(2), {{samples[0], samples[1]}, {samples[2], samples[3]}}, 3);
    for (const auto& run : runs) REQUIRE_MESSAGE(run.status.ok(), run.status.to_string());
    for (int i = 0; i < 3; ++i) {
      CHECK(runs[0].stats[i].loss == runs[1].stats[i].loss);
      CHECK(runs[0].stats[i].grad_norm == doctest::Approx(whole.stats[i].grad_norm).epsilon(1e-3));
    }
    CHECK(max_difference(models[0].named_parameters(), models[1].named_parameters()) == 0.0);
    auto untrained = load_tiny(torch::kBFloat16);
    CHECK(max_difference(untrained.named_parameters(), models[0].named_parameters()) > 1e-3);
    // one process on the whole batch: the same masters up to float32 summation order, so the bfloat16
    // weights agree but for an occasional rounding step (at most one bfloat16 step of the largest weight)
    const double diff = max_difference(models[0].named_parameters(), single.named_parameters());
    MESSAGE("max |w(rank 0) - w(single)| in bfloat16 after 3 steps: " << diff);
    CHECK(diff <= max_abs(single.named_parameters()) / 128);
  }

  TEST_CASE("data parallel: one rank's malformed sample fails the step on every rank, without a hang") {
    auto reference = load_tiny(torch::kFloat32);
    auto samples = make_samples(reference);
    samples[3].response[0] = 5000;
    auto models = two_copies(torch::kFloat32);
    const auto runs = train_ranks(models, trainer_options(2), {{samples[0], samples[1]}, {samples[2], samples[3]}}, 1);
    REQUIRE_FALSE(runs[0].status.ok());
    REQUIRE_FALSE(runs[1].status.ok());
    CHECK(runs[0].status.message() == "policy update: another rank's samples were refused (see its error)");
    CHECK(runs[1].status.message().find("sample 1: token id 5000 outside the vocabulary") != std::string::npos);
  }

  TEST_CASE("joining a gloo group with a bad rank is an error that names the group") {
    const auto group = make_gloo_group(2, 2, "127.0.0.1", 1);
    REQUIRE_FALSE(group.ok());
    CHECK(group.status().message() ==
          "joining gloo group as rank 2 of 2 via 127.0.0.1:1: rank 2 of world size 2: need 0 <= rank < world_size");
  }

  TEST_CASE("a rank's place comes from torchrun's variables, else Slurm's, else it is one process") {
    std::map<std::string, std::string> env;
    const EnvLookup lookup = [&](const char* name) {
      const auto it = env.find(name);
      return it == env.end() ? nullptr : it->second.c_str();
    };
    auto alone = rank_placement(lookup);
    REQUIRE(alone.ok());
    CHECK_FALSE(alone->launched);
    CHECK(alone->world == 1);

    // torchrun on the second of two 4-GPU nodes: global rank 6 is local rank 2 there.
    env = {{"RANK", "6"}, {"WORLD_SIZE", "8"}, {"LOCAL_RANK", "2"}, {"MASTER_ADDR", "10.0.0.1"}, {"MASTER_PORT", "29500"}};
    auto node = rank_placement(lookup);
    REQUIRE_MESSAGE(node.ok(), node.status().to_string());
    CHECK(node->launched);
    CHECK(node->rank == 6);
    CHECK(node->world == 8);
    CHECK(node->local_rank == 2);
    CHECK(node->master_addr == "10.0.0.1");
    CHECK(node->master_port == 29500);

    // One rank launched alone needs no port (the group takes a free one); it is still launched.
    env = {{"RANK", "0"}, {"WORLD_SIZE", "1"}};
    auto one = rank_placement(lookup);
    REQUIRE(one.ok());
    CHECK(one->launched);
    CHECK(one->master_port == 0);

    // Slurm's names when torchrun's are absent.
    env = {{"SLURM_PROCID", "3"}, {"SLURM_NTASKS", "4"}, {"SLURM_LOCALID", "1"}, {"MASTER_ADDR", "n1"}, {"MASTER_PORT", "1234"}};
    auto slurm = rank_placement(lookup);
    REQUIRE_MESSAGE(slurm.ok(), slurm.status().to_string());
    CHECK(slurm->rank == 3);
    CHECK(slurm->world == 4);
    CHECK(slurm->local_rank == 1);

    CHECK(slurm->local_world == 4);  // one machine unless told

    // the processes per machine: torchrun's LOCAL_WORLD_SIZE, Slurm's SLURM_NTASKS_PER_NODE
    env = {{"RANK", "6"}, {"WORLD_SIZE", "8"}, {"LOCAL_RANK", "2"}, {"LOCAL_WORLD_SIZE", "4"}, {"MASTER_PORT", "29500"}};
    auto per_node = rank_placement(lookup);
    REQUIRE_MESSAGE(per_node.ok(), per_node.status().to_string());
    CHECK(per_node->local_world == 4);
    env["LOCAL_WORLD_SIZE"] = "2";  // fewer than LOCAL_RANK + 1
    CHECK(rank_placement(lookup).status().message() == "LOCAL_WORLD_SIZE must be an integer in [3, 8] (got '2')");

    env = {{"RANK", "2"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "1"}};
    CHECK(rank_placement(lookup).status().message() == "RANK must be an integer in [0, 1] (got '2')");
    env = {{"RANK", "0"}, {"WORLD_SIZE", "2"}};
    CHECK(rank_placement(lookup).status().message() == "MASTER_PORT must be an integer in [1, 65535] (got '')");
  }

  TEST_CASE("model.device cuda puts each rank on its own GPU; cpu and cuda:N stay as written") {
    RankPlacement rank;
    rank.launched = true;
    rank.rank = 5, rank.world = 8, rank.local_rank = 1;
    auto cpu = rank_device("cpu", rank, 0);
    REQUIRE(cpu.ok());
    CHECK(cpu->is_cpu());
    auto missing = rank_device("cuda", rank, 1);
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.status().message() ==
          "rank 5 (local rank 1) needs cuda:1, but this machine has 1 GPU(s): start at most one rank per GPU");
    if (torch::cuda::device_count() >= 2) {
      auto own = rank_device("cuda", rank, static_cast<int>(torch::cuda::device_count()));
      REQUIRE(own.ok());
      CHECK(own->index() == 1);
    }
  }

  TEST_CASE("separate placement: rollout.device cuda is the GPU after the learners' GPUs on the machine") {
    RankPlacement rank;
    rank.launched = true;
    rank.rank = 5, rank.world = 8, rank.local_rank = 1, rank.local_world = 4;
    auto cpu = generator_device("cpu", rank, 0);
    REQUIRE(cpu.ok());
    CHECK(cpu->is_cpu());
    auto missing = generator_device("cuda", rank, 4);
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.status().message() ==
          "rank 5 (local rank 1 of 4) generates on cuda:5 (after the learners' GPUs), but this machine has 4 GPU(s): "
          "placement separate needs twice as many GPUs as learner processes on a machine");
  }

  TEST_CASE("weights broadcast to the generators' side arrive whole, in order, in tensors of their own") {
    TensorMap weights = {{"a.weight", torch::randn({3, 4})}, {"b.bias", torch::randn({5}).to(torch::kBFloat16)}};
    std::mutex mutex;
    std::vector<std::pair<int32_t, std::shared_ptr<const TensorMap>>> received;
    auto broadcast = WeightBroadcast::start(
        weights, torch::kCPU, torch::kCPU,
        [&](int32_t version, std::shared_ptr<const TensorMap> got) {
          std::lock_guard lock(mutex);
          received.emplace_back(version, std::move(got));
        },
        std::chrono::seconds(60));
    REQUIRE_MESSAGE(broadcast.ok(), broadcast.status().to_string());
    REQUIRE((*broadcast)->send(1, weights).ok());
    const TensorMap first = {{"a.weight", weights["a.weight"].clone()}, {"b.bias", weights["b.bias"].clone()}};
    weights["a.weight"].add_(1.0);  // the learner moves on; what was sent must not change with it
    weights["b.bias"].mul_(2.0);
    REQUIRE((*broadcast)->send(2, weights).ok());
    CHECK((*broadcast)->send(3, {{"a.weight", weights["a.weight"]}}).message() == "sending weights: no tensor 'b.bias'");
    (*broadcast)->close();  // waits for the receiver: everything sent has been delivered
    CHECK((*broadcast)->closed());
    CHECK((*broadcast)->send(4, weights).message() == "the weight broadcast is closed (the run is ending)");
    REQUIRE(received.size() == 2);
    CHECK(received[0].first == 1);
    CHECK(received[1].first == 2);
    for (const auto& [name, tensor] : first) {
      const torch::Tensor& got1 = received[0].second->at(name);
      CHECK((got1.scalar_type() == tensor.scalar_type()));
      CHECK(torch::equal(got1, tensor));
      CHECK(torch::equal(received[1].second->at(name), weights.at(name)));
      CHECK(got1.data_ptr() != tensor.data_ptr());
    }
  }

  TEST_CASE("a weight broadcast between a CPU and a GPU, or within one GPU, is refused with the reason") {
    const TensorMap weights = {{"w", torch::zeros({2})}};
    const auto ignore = [](int32_t, std::shared_ptr<const TensorMap>) {};
    auto mixed = WeightBroadcast::start(weights, torch::kCPU, torch::Device("cuda:0"), ignore);
    REQUIRE_FALSE(mixed.ok());
    CHECK(mixed.status().message() ==
          "the weight broadcast from cpu to cuda:0: the learner and the generators must both be on GPUs (NCCL) or both "
          "on the CPU (Gloo)");
    auto same = WeightBroadcast::start(weights, torch::Device("cuda:0"), torch::Device("cuda:0"), ignore);
    REQUIRE_FALSE(same.ok());
    CHECK(same.status().message() ==
          "the weight broadcast from cuda:0 to cuda:0: one GPU for both; separate placement needs the generators on "
          "another GPU");
  }

  TEST_CASE("the group of a launched rank is Gloo for CPU models, at world size 1 too") {
    RankPlacement rank;
    rank.launched = true;  // port 0: a free one is taken
    auto group = make_rank_group(rank, torch::kCPU, std::chrono::seconds(30));
    REQUIRE_MESSAGE(group.ok(), group.status().to_string());
    CHECK((*group)->world_size() == 1);
    auto t = torch::arange(4, torch::kFloat32);
    REQUIRE((*group)->all_reduce({t}).ok());
    CHECK(t.sum().item<double>() == 6.0);
  }
}

}  // namespace
}  // namespace torl::model
