#include "model/generation_bench.hpp"

#include <chrono>

#include "model/generation_engine.hpp"
#include "model/qwen2_causal_lm.hpp"

namespace torl::model {
namespace {

using Clock = std::chrono::steady_clock;

Expected<GenerationBenchRun> run_once(Qwen2CausalLm& lm, const GenerationBenchShape& shape, const torch::Tensor& prompts) {
  const Tokenizer tokenizer = Tokenizer::byte_level({});
  GenerationEngine engine(lm, tokenizer);
  for (long b = 0; b < shape.batch; ++b) {
    GenerationRequest request;
    request.id = b;
    const auto row = prompts[b];
    request.prompt.assign(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + shape.prompt_len);
    request.max_new_tokens = shape.new_tokens;
    request.sampling.temperature = 0;
    TORL_RETURN_IF_ERROR(engine.admit(std::move(request)));
  }
  GenerationBenchRun run;
  const auto start = Clock::now();
  engine.step();
  const auto prefilled = Clock::now();
  const int64_t forwards = lm.forwards();
  while (!engine.step().empty()) ++run.decode_steps;
  run.decode_forwards = lm.forwards() - forwards;
  run.prefill_s = std::chrono::duration<double>(prefilled - start).count();
  run.decode_s = std::chrono::duration<double>(Clock::now() - prefilled).count();
  return run;
}

}  // namespace

Expected<std::vector<GenerationBenchRun>> bench_generation(const Qwen2Model& model, const GenerationBenchShape& shape) {
  torch::manual_seed(1);
  const torch::Tensor prompts =
      torch::randint(0, model.config().vocab_size, {shape.batch, shape.prompt_len}, torch::kInt64).contiguous();
  // One cache for all runs (each run's engine clears the slots it takes), so that the CUDA graphs
  // captured in the warm-up run serve the timed ones.
  Qwen2CausalLm lm(model, shape.batch, shape.prompt_len + shape.new_tokens + 1);
  lm.set_cuda_graphs(shape.cuda_graphs);
  std::vector<GenerationBenchRun> runs;
  for (int i = 0; i <= shape.repeats; ++i) {
    auto run = run_once(lm, shape, prompts);
    if (!run) return run.status();
    run->graphs_captured = lm.graphs_captured();
    if (i > 0) runs.push_back(*run);  // run 0 warms up
  }
  return runs;
}

}  // namespace torl::model
