#include "model/train_bench.hpp"

#include <malloc.h>

#include <chrono>
#include <fstream>
#include <random>
#include <string>

#include "model/policy_trainer.hpp"

namespace torl::model {
namespace {

// A field of /proc/self/status in bytes ("VmRSS", "VmHWM"); -1 when it cannot be read.
int64_t status_bytes(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1)) * 1024;  // kB
  }
  return -1;
}

// Starts a new peak: freed heap memory goes back to the system, and VmHWM is set to the current RSS
// (Linux clear_refs 5). Allocations of 1 MiB and more are mapped on their own and unmapped when freed
// (a fixed threshold: glibc's default raises it up to 32 MiB as large blocks are freed, after which
// freed tensors stay in a fragmented heap and the peak of a later run reads higher than its first).
bool reset_peak() {
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  malloc_trim(0);
  std::ofstream clear("/proc/self/clear_refs");
  clear << "5";
  clear.flush();
  return static_cast<bool>(clear);
}

}  // namespace

Expected<TrainBenchRun> bench_train_step(const TrainBenchShape& shape, bool checkpointing, int64_t logits_chunk) {
  constexpr int64_t kPrompt = 64;
  if (shape.length <= kPrompt || shape.sequences < 1 || shape.vocabulary < 2 || shape.steps < 1) {
    return invalid_argument("need sequences >= 1, length > 64, vocabulary >= 2, steps >= 1");
  }
  TrainBenchRun run;
  run.checkpointing = checkpointing;
  run.logits_chunk = logits_chunk;
  const Qwen2Config config = bench_model_config(shape.vocabulary, shape.length);
  MemoryPlanInput input;
  input.model = config;
  input.gradient_checkpointing = checkpointing;
  input.sequences = shape.sequences;
  input.length = shape.length;
  input.logits_chunk = logits_chunk;
  // in doubles first: a shape of 10^11 tokens overflows the plan's int64 sums
  const double tokens = static_cast<double>(shape.sequences) * static_cast<double>(shape.length);
  const int64_t free_bytes = available_host_memory();
  const bool overflows = tokens * static_cast<double>(std::max(config.hidden_size, config.vocab_size)) * 16 > 4e18;
  run.planned_bytes = overflows ? 0 : plan_memory(input).total();
  if (overflows || (free_bytes >= 0 && run.planned_bytes > free_bytes)) {
    return invalid_argument("--sequences " + std::to_string(shape.sequences) + " x --length " +
                            std::to_string(shape.length) + " needs more memory than this machine has free (" +
                            std::to_string(free_bytes >> 20) + " MiB; see torl train --plan)");
  }

  // The same random tokens for every run: 64-token prompts (different in each row), the rest response.
  std::mt19937 rng(7);
  std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(shape.vocabulary - 1));
  std::vector<PolicySample> samples(static_cast<size_t>(shape.sequences));
  for (size_t i = 0; i < samples.size(); ++i) {
    auto& s = samples[i];
    for (int64_t t = 0; t < kPrompt; ++t) s.prompt.push_back(token(rng));
    for (int64_t t = kPrompt; t < shape.length; ++t) s.response.push_back(token(rng));
    s.loss_mask.assign(s.response.size(), 1);
    s.old_logprobs.assign(s.response.size(), -10.0f);
    s.advantage = i % 2 == 0 ? 1.0f : -1.0f;
  }

  if (!reset_peak()) return Status(StatusCode::kUnavailable, "train bench: cannot reset the peak (/proc/self/clear_refs)");
  const int64_t start = status_bytes("VmRSS");
  if (start < 0) return Status(StatusCode::kUnavailable, "train bench: no VmRSS in /proc/self/status");
  {
    torch::manual_seed(0);
    auto model = Qwen2Model::from_tensors(config, random_weights(config, torch::kFloat32), "random model",
                                          torch::kCPU, torch::kFloat32);
    if (!model) return model.status();
    model->set_gradient_checkpointing(checkpointing);
    PolicyTrainerOptions options;
    options.train.micro_batch = static_cast<int>(shape.sequences);
    options.train.logits_chunk = static_cast<int>(logits_chunk);
    auto trainer = PolicyTrainer::create(*model, options);
    if (!trainer) return trainer.status();
    for (int i = 0; i < shape.steps; ++i) {
      const auto begin = std::chrono::steady_clock::now();
      const auto stats = trainer->step(samples);
      if (!stats) return stats.status().with_context("train bench");
      run.step_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
    }
  }
  run.peak_bytes = status_bytes("VmHWM") - start;

  return run;
}

}  // namespace torl::model
