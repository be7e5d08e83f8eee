// torl train --plan's arithmetic (model/memory_plan.hpp) on the real Qwen2.5-Math shapes
// (../shared/fixtures/configs): parameter counts as HF reports them, what each setting changes, and the
// advice when a plan does not fit. (How close the plan is to a measured peak: torl train bench.)
#include <filesystem>
#include <string>

#include "model/memory_plan.hpp"

// After the LibTorch headers: glog (through c10) defines its own CHECK (see qwen2_test.cpp).
#include <doctest/doctest.h>

namespace torl::model {
namespace {

Qwen2Config shape(const std::string& name) {
  const auto file = std::filesystem::path(TORL_SOURCE_DIR) / ".." / "shared" / "fixtures" / "configs" / name;
  INFO("fixture: " << file.string() << " is missing (see ../shared/fixtures)");
  auto config = Qwen2Config::load(file);
  REQUIRE_MESSAGE(config.ok(), config.status().to_string());
  return *config;
}

MemoryPlanInput bf16_run(const Qwen2Config& config) {
  MemoryPlanInput in;
  in.model = config;
  in.dtype = torch::kBFloat16;
  in.master_copy = true;
  in.gradient_checkpointing = true;
  in.sequences = 8;
  in.length = 3472;
  in.logits_chunk = 1024;
  in.generators = 1;
  in.cache_slots = 128;
  in.cache_length = 3473;
  return in;
}

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

}  // namespace

TEST_SUITE("model") {
  TEST_CASE("memory plan: parameter counts of Qwen2.5-Math-1.5B and 7B") {
    CHECK(parameter_count(shape("qwen2.5-math-1.5b.json")) == 1543714304);  // tied embeddings
    CHECK(parameter_count(shape("qwen2.5-math-7b.json")) == 7615616512);
  }

  TEST_CASE("memory plan: what mixed precision, checkpointing and chunking each change") {
    const auto config = shape("qwen2.5-math-1.5b.json");
    const int64_t P = parameter_count(config);
    auto in = bf16_run(config);
    const auto plan = plan_memory(in);
    CHECK(plan.bytes_of("policy weights") == 2 * P);
    CHECK(plan.bytes_of("master weights") == 4 * P);
    CHECK(plan.bytes_of("AdamW state") == 8 * P);
    // KV cache: 28 layers x (k, v) x 128 slots x 2 kv heads x 3473 x 128 dims x 2 bytes
    CHECK(plan.bytes_of("KV cache") == int64_t{28} * 2 * 128 * 2 * 3473 * 128 * 2);
    // a chunk's logits depend on logits_chunk, not on the micro-batch
    auto longer = in;
    longer.sequences *= 2;
    CHECK(plan_memory(longer).bytes_of("logits") == plan.bytes_of("logits"));
    auto half_chunk = in;
    half_chunk.logits_chunk /= 2;
    CHECK(2 * plan_memory(half_chunk).bytes_of("logits") == plan.bytes_of("logits"));

    auto pure = in;
    pure.master_copy = false;
    CHECK(plan_memory(pure).bytes_of("master weights") == 0);
    CHECK(plan_memory(pure).bytes_of("AdamW state") == 4 * P);

    auto unchecked = in;
    unchecked.gradient_checkpointing = false;
    CHECK(plan_memory(unchecked).bytes_of("activations") > 5 * plan.bytes_of("activations"));
    auto unchunked = in;
    unchunked.logits_chunk = 0;
    // all at once, the logits grow with the micro-batch's tokens (and dwarf a chunk's)
    auto unchunked_longer = unchunked;
    unchunked_longer.sequences *= 2;
    CHECK(plan_memory(unchunked_longer).bytes_of("logits") == 2 * plan_memory(unchunked).bytes_of("logits"));
    CHECK(plan_memory(unchunked).bytes_of("logits") > 10 * plan.bytes_of("logits"));
    CHECK(plan.total() < 80 * kGiB);
  }

  TEST_CASE("memory plan: separate placement moves the generators off the learner's device; a freed cache "
            "takes turns with the update") {
    const auto config = shape("qwen2.5-math-1.5b.json");
    const int64_t P = parameter_count(config);
    const auto in = bf16_run(config);
    const auto colocated = plan_memory(in);
    const int64_t cache = colocated.bytes_of("KV cache");
    auto separate = in;
    separate.separate = true;
    const auto learner = plan_memory(separate);
    CHECK(learner.bytes_of("KV cache") == 0);
    CHECK(learner.bytes_of("generators' weights") == 0);
    CHECK(learner.bytes_of("weights broadcast") == 2 * P);
    CHECK(learner.total() == colocated.total() - cache - 2 * 2 * P + 2 * P);
    const auto generators = plan_generator_memory(separate);
    CHECK(generators.bytes_of("KV cache") == cache);
    CHECK(generators.bytes_of("generators' weights") == 2 * P);

    auto freed = in;
    freed.cache_freed = true;
    freed.cache_slots = 256;
    const int64_t update = colocated.bytes_of("activations") + colocated.bytes_of("logits");
    REQUIRE(2 * cache > update);  // 256 slots of 3473 tokens outweigh a checkpointed micro-batch
    CHECK(plan_memory(freed).bytes_of("KV cache") == 2 * cache - update);
    freed.cache_slots = 1;  // a small cache fits in the update's share entirely
    CHECK(plan_memory(freed).bytes_of("KV cache") == 0);
  }

  TEST_CASE("memory plan: a plan that does not fit names the settings that shrink it") {
    auto in = bf16_run(shape("qwen2.5-math-7b.json"));
    in.gradient_checkpointing = false;
    in.logits_chunk = 0;
    const auto plan = plan_memory(in);
    const std::string text = format_memory_plan(plan, in, 80);
    CHECK(text.find("does NOT fit in 80 GiB") != std::string::npos);
    CHECK(text.find("model.gradient_checkpointing: true") != std::string::npos);
    CHECK(text.find("train.logits_chunk") != std::string::npos);
    const std::string fits = format_memory_plan(plan, in, 4096);
    CHECK(fits.find("fits in 4096 GiB") != std::string::npos);
  }
}

}  // namespace torl::model
