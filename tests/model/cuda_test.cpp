// The model, the learner's update and NCCL on a CUDA device, against HF's reference and the CPU. Each
// case says it was skipped where LibTorch sees no GPU (the CPU build, or the CUDA build on a machine
// without one, as in CI); the GPU machine's script runs them (tools/device/).
#include <filesystem>

#include "model/data_parallel.hpp"
#include "model/device.hpp"
#include "model/policy_trainer.hpp"
#include "model/qwen2_causal_lm.hpp"
#include "model/reference_check.hpp"
#include "tests/model/policy_samples.hpp"

// After the LibTorch headers: glog (through c10) defines its own CHECK (see qwen2_test.cpp).
#include <doctest/doctest.h>

namespace torl::model {
namespace {

std::filesystem::path fixture(const std::string& name) {
  return std::filesystem::path(TORL_SOURCE_DIR) / ".." / "shared" / "fixtures" / name;
}

bool skip_without_cuda() {
  if (torch::cuda::is_available()) return false;
  MESSAGE("skipped: no CUDA device (" << runtime_summary() << ")");
  return true;
}

TEST_SUITE("model") {
  TEST_CASE("on CUDA, the fixture models match the HF float32 reference") {
    if (skip_without_cuda()) return;
    for (const std::string name : {"tiny-qwen2", "tiny-qwen2-tied"}) {
      INFO(name);
      auto model = Qwen2Model::load(fixture(name), torch::Device(torch::kCUDA, 0), torch::kFloat32);
      REQUIRE_MESSAGE(model.ok(), model.status().to_string());
      auto reference = read_safetensors(fixture(name) / "reference.safetensors");
      REQUIRE_MESSAGE(reference.ok(), reference.status().to_string());
      auto checks = check_against_reference(*model, *reference);
      REQUIRE_MESSAGE(checks.ok(), checks.status().to_string());
      CHECK(checks->size() == 3);
      for (const auto& check : *checks) {
        MESSAGE(name << " " << check.name << ": error " << check.error << " (tolerance " << check.tolerance << ")");
        CHECK(check.passed());
      }
    }
  }

  TEST_CASE("on CUDA, two policy updates end where the CPU's end (float32)") {
    if (skip_without_cuda()) return;
    auto cpu = testing::load_tiny(torch::kFloat32);
    auto gpu = Qwen2Model::load(fixture("tiny-qwen2"), torch::Device(torch::kCUDA, 0), torch::kFloat32);
    REQUIRE_MESSAGE(gpu.ok(), gpu.status().to_string());
    const auto samples = testing::make_policy_samples(cpu, {.seed = 5,
                                                            .prompt_len = {3, 6, 2, 5},
                                                            .response_len = {9, 4, 7, 3},
                                                            .advantage = {1.1f, -0.7f, 0.4f, -1.3f},
                                                            .tool_every = 3,
                                                            .tool_at = 1,
                                                            .offset = 0.4});
    PolicyTrainerOptions options;
    options.train.lr = 1e-3;
    options.train.micro_batch = 2;
    options.train.warmup_steps = 0;
    options.algorithm.entropy_coef = 0.01;
    for (auto* model : {&cpu, &*gpu}) {
      auto trainer = PolicyTrainer::create(*model, options);
      REQUIRE_MESSAGE(trainer.ok(), trainer.status().to_string());
      for (int step = 0; step < 2; ++step) {
        auto stats = trainer->step(samples);
        REQUIRE_MESSAGE(stats.ok(), stats.status().to_string());
      }
    }
    const auto on_gpu = gpu->named_parameters();
    const auto initial = testing::load_tiny(torch::kFloat32).named_parameters();
    double moved = 0, differ = 0;
    for (const auto& [name, p] : cpu.named_parameters()) {
      moved = std::max(moved, (p - initial.at(name)).abs().max().item<double>());
      differ = std::max(differ, (p - on_gpu.at(name).cpu()).abs().max().item<double>());
    }
    MESSAGE("max |CPU - CUDA| over the weights after 2 updates: " << differ << " (the updates moved them by up to "
                                                                   << moved << ")");
    CHECK(moved > 1e-4);
    // Not bit-equal: the GPU sums in another order (~1e-7 relative per float32 op), and AdamW's first
    // steps divide each update by the gradient's own size, so a weight whose gradient is near zero
    // moves by up to lr either way. Seen on an H200: 3.3e-5, 1.6% of the largest move.
    CHECK(differ < 0.05 * moved);
  }

  TEST_CASE("on CUDA, decoding through CUDA graphs gives full forwards' logits, also after the cache was freed") {
    if (skip_without_cuda()) return;
    auto model = Qwen2Model::load(fixture("tiny-qwen2"), torch::Device(torch::kCUDA, 0), torch::kFloat32);
    REQUIRE_MESSAGE(model.ok(), model.status().to_string());
    Qwen2CausalLm lm(*model, 4, 64);
    const auto full_last = [&](const std::vector<int64_t>& tokens) {
      torch::NoGradGuard no_grad;
      const int64_t n = static_cast<int64_t>(tokens.size());
      const auto on = torch::TensorOptions().dtype(torch::kInt64).device(model->device());
      const torch::Tensor ids = torch::tensor(tokens, on).view({1, n});
      return model->forward(ids, torch::arange(n, on).view({1, n}), torch::ones({1, n}, on))[0][n - 1];
    };
    const auto decode = [&](int64_t slot, std::vector<int64_t> text) {
      torch::Tensor logits = lm.extend({slot}, {text})[0];
      for (int step = 0; step < 6; ++step) {
        CHECK(torch::allclose(logits, full_last(text), 0, 1e-4));
        const int64_t next = logits.argmax().item<int64_t>();
        text.push_back(next);
        logits = lm.extend({slot}, {{next}})[0];  // a padded decode step: a graph's replay
      }
    };
    decode(0, {5, 17, 300, 42, 7});
    const int64_t captured = lm.graphs_captured();
    CHECK(captured > 0);
    lm.clear(0);
    REQUIRE(lm.release_cache());
    decode(2, {9, 8, 7, 6});  // a new cache, new graphs captured over it
    CHECK(lm.graphs_captured() > captured);
  }

#ifdef TORL_WITH_NCCL
  TEST_CASE("with NCCL, weights broadcast from cuda:0 to cuda:1 arrive whole") {
    if (skip_without_cuda()) return;
    if (torch::cuda::device_count() < 2) {
      MESSAGE("skipped: one GPU (separate placement needs two)");
      return;
    }
    const auto on0 = torch::TensorOptions().device(torch::kCUDA, 0);
    const TensorMap weights = {{"w", torch::randn({64, 32}, on0).to(torch::kBFloat16)}, {"b", torch::randn({7}, on0)}};
    std::shared_ptr<const TensorMap> got;
    auto broadcast = WeightBroadcast::start(weights, torch::Device(torch::kCUDA, 0), torch::Device(torch::kCUDA, 1),
                                            [&](int32_t, std::shared_ptr<const TensorMap> w) { got = std::move(w); },
                                            std::chrono::seconds(60));
    REQUIRE_MESSAGE(broadcast.ok(), broadcast.status().to_string());
    REQUIRE((*broadcast)->send(1, weights).ok());  // returns once delivered
    REQUIRE(got != nullptr);
    for (const auto& [name, tensor] : weights) {
      CHECK(got->at(name).device() == torch::Device(torch::kCUDA, 1));
      CHECK(torch::equal(got->at(name).cpu(), tensor.cpu()));
    }
  }

  TEST_CASE("with NCCL, a group of one rank on cuda:0 all-reduces and broadcasts in place") {
    if (skip_without_cuda()) return;
    const uint16_t port = free_loopback_port();
    REQUIRE(port != 0);
    auto group = make_nccl_group(0, 1, "127.0.0.1", port, std::chrono::seconds(60));
    REQUIRE_MESSAGE(group.ok(), group.status().to_string());
    const auto options = torch::TensorOptions().device(torch::kCUDA, 0);
    auto a = torch::arange(6, options.dtype(torch::kFloat32)).view({2, 3});
    auto b = torch::full({4}, 2.5, options.dtype(torch::kBFloat16));
    REQUIRE((*group)->all_reduce({a, b}).ok());
    CHECK(a.sum().item<double>() == 15.0);
    CHECK(b.sum().item<double>() == 10.0);
    REQUIRE((*group)->broadcast_from_rank0({a}).ok());
    CHECK(a.is_cuda());
  }
#endif
}

}  // namespace
}  // namespace torl::model
