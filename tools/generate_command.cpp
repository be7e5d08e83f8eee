// torl generate: sample from a model through the generation engine; and its benchmark.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <iomanip>

#include "model/device.hpp"
#include "model/generation_bench.hpp"
#include "model/generation_engine.hpp"
#include "model/qwen2_causal_lm.hpp"
#include "tools/arg_reader.hpp"
#include "tools/commands.hpp"

namespace torl::tools {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kUsage =
    "usage: torl generate --model DIR --prompt TEXT [--max-new-tokens N] [--temperature T] [--top-p P]\n"
    "                     [--top-k K] [--seed S] [--stop STR]... [--tokenizer PATH | --byte-level]\n"
    "                     [--device cpu|cuda[:N]] [--dtype float32|bfloat16|float16]\n"
    "       torl generate bench (--model DIR | --random | --random-config FILE) [--batch B] [--prompt-len P]\n"
    "                     [--new-tokens N] [--repeat R] [--device ...] [--dtype ...] [--no-cuda-graphs]\n"
    "\n"
    "generate prints the generated text (after the prompt) on stdout and the token count, stop reason\n"
    "and speed on stderr. The tokenizer is DIR/tokenizer.json unless --tokenizer or --byte-level.\n"
    "bench prints prefill and decode tokens/s of the engine: the medians of R timed runs (default 5)\n"
    "after an untimed warm-up run; --random uses a random 4-layer, d=256 Qwen2 (4 heads, 2 kv heads,\n"
    "vocabulary 4096) instead of a checkpoint; --random-config the shape of a config.json (e.g.\n"
    "../shared/fixtures/configs/qwen2.5-math-1.5b.json) with random weights made on the device. On\n"
    "CUDA the decode steps replay CUDA graphs, captured in the warm-up run; --no-cuda-graphs runs them\n"
    "op by op.\n";

struct Options {
  std::string model, prompt, tokenizer, device = "cpu", dtype = "float32", random_config;
  bool byte_level = false, random = false, cuda_graphs = true;
  long max_new_tokens = 128, top_k = 0, seed = 0, batch = 1, prompt_len = 128, new_tokens = 64, repeat = 5;
  double temperature = 1.0, top_p = 1.0;
  std::vector<std::string> stops;
};

int usage_error(std::ostream& err, const std::string& message) {
  err << "torl generate: " << message << "\n" << kUsage;
  return kExitUsage;
}

Expected<model::Qwen2Model> load_model(const Options& options) {
  auto device = model::resolve_device(options.device);
  if (!device) return device.status();
  auto dtype = model::parse_dtype(options.dtype);
  if (!dtype) return dtype.status();
  if (options.random) return model::random_bench_model(*device, *dtype);
  if (!options.random_config.empty()) {
    auto config = model::Qwen2Config::load(options.random_config);
    if (!config) return config.status();
    return model::random_model(*config, *device, *dtype);
  }
  return model::Qwen2Model::load(options.model, *device, *dtype);
}

Expected<model::Tokenizer> load_tokenizer(const Options& options) {
  if (options.byte_level) return model::Tokenizer::byte_level({});
  const std::filesystem::path path(options.tokenizer.empty() ? options.model : options.tokenizer);
  auto tokenizer = model::Tokenizer::load(path);
  if (!tokenizer) {
    return tokenizer.status().with_context("no tokenizer (pass --tokenizer PATH, or --byte-level for byte ids)");
  }
  return tokenizer;
}

int generate(const Options& options, std::ostream& out, std::ostream& err) {
  auto tokenizer = load_tokenizer(options);
  if (!tokenizer) return err << "torl generate: " << tokenizer.status().message() << "\n", kExitFailed;
  auto loaded = load_model(options);
  if (!loaded) return err << "torl generate: " << loaded.status().message() << "\n", kExitFailed;
  const model::Qwen2Model& qwen = *loaded;
  const auto prompt_ids = tokenizer->encode(options.prompt);
  auto lm = model::Qwen2CausalLm::create(qwen, 1, static_cast<int64_t>(prompt_ids.size()) + options.max_new_tokens + 1);
  if (!lm) {
    return err << "torl generate: the prompt (" << prompt_ids.size() << " tokens) and --max-new-tokens ("
               << options.max_new_tokens << "): " << lm.status().message() << "\n",
           kExitUsage;
  }
  model::GenerationEngine engine(**lm, *tokenizer);
  model::GenerationRequest request;
  request.prompt.assign(prompt_ids.begin(), prompt_ids.end());
  request.max_new_tokens = options.max_new_tokens;
  request.sampling = {options.temperature, options.top_p, options.top_k};
  request.seed = static_cast<uint64_t>(options.seed);
  request.stops = options.stops;
  if (qwen.config().eos_token_id >= 0) request.eos_ids = {qwen.config().eos_token_id};
  if (auto status = engine.admit(request); !status.ok()) {
    return err << "torl generate: " << status.message() << "\n", kExitUsage;
  }
  const auto start = Clock::now();
  std::vector<int32_t> generated;
  model::StopReason reason = model::StopReason::kNone;
  while (reason == model::StopReason::kNone) {
    const auto updates = engine.step();
    if (updates.empty()) break;
    for (const int64_t token : updates[0].tokens) generated.push_back(static_cast<int32_t>(token));
    reason = updates[0].stop;
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  static constexpr const char* kReasons[] = {"none", "stop string", "eos", "length", "cache full"};
  out << tokenizer->decode(generated) << "\n";
  err << generated.size() << " tokens, stopped by " << kReasons[static_cast<int>(reason)] << ", " << std::fixed
      << std::setprecision(1) << generated.size() / seconds << " tokens/s\n";
  return kExitOk;
}

// Median of `values` (not empty).
double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

int bench(const Options& options, std::ostream& out, std::ostream& err) {
  auto loaded = load_model(options);
  if (!loaded) return err << "torl generate bench: " << loaded.status().message() << "\n", kExitFailed;
  const model::GenerationBenchShape shape{.batch = options.batch, .prompt_len = options.prompt_len,
                                          .new_tokens = options.new_tokens, .repeats = static_cast<int>(options.repeat),
                                          .cuda_graphs = options.cuda_graphs};
  const auto runs = model::bench_generation(*loaded, shape);
  if (!runs) return err << "torl generate bench: " << runs.status().message() << "\n", kExitUsage;
  std::vector<double> prefill, decode;
  for (const auto& run : *runs) {
    prefill.push_back(options.batch * options.prompt_len / run.prefill_s);
    decode.push_back(options.batch * run.decode_steps / run.decode_s);
  }
  const long steps = runs->front().decode_steps;
  const double prefill_rate = median(prefill), decode_rate = median(decode);
  out << "torl generate bench: " << (options.random                   ? "random 4-layer d=256 Qwen2"
                                     : !options.random_config.empty() ? "random weights, the shape of " + options.random_config
                                                                      : options.model) << ", "
      << options.device << " " << options.dtype << ", " << model::runtime_summary() << "\n"
      << "batch " << options.batch << ", prompt " << options.prompt_len << ", new tokens " << options.new_tokens
      << "; medians of " << runs->size() << " runs after a warm-up run\n"
      << std::fixed << std::setprecision(1) << "prefill: " << prefill_rate << " tokens/s ("
      << options.batch * options.prompt_len / prefill_rate * 1000 << " ms; runs "
      << *std::min_element(prefill.begin(), prefill.end()) << "-" << *std::max_element(prefill.begin(), prefill.end())
      << " tokens/s)\n"
      << "decode:  " << decode_rate << " tokens/s (" << steps << " steps, "
      << options.batch * 1000.0 / decode_rate << " ms/step; runs " << *std::min_element(decode.begin(), decode.end())
      << "-" << *std::max_element(decode.begin(), decode.end()) << " tokens/s)\n"
      << "decode forwards per step: " << std::setprecision(2)
      << static_cast<double>(runs->front().decode_forwards) / static_cast<double>(std::max(1L, steps))
      << "; CUDA graphs: " << runs->back().graphs_captured << " captured"
      << (options.cuda_graphs ? "" : " (--no-cuda-graphs)") << "\n";
  return kExitOk;
}

}  // namespace

int generate_command(const Args& args, std::ostream& out, std::ostream& err) {
  const bool is_bench = !args.empty() && args[0] == "bench";
  const Args rest(args.begin() + (is_bench ? 1 : 0), args.end());
  Options options;
  std::string temperature, top_p;
  ArgReader reader(rest);
  while (!reader.done()) {
    if (reader.flag("--help") || reader.flag("-h")) {
      out << kUsage;
      return kExitOk;
    }
    if (reader.value("--model", options.model) || reader.value("--prompt", options.prompt) ||
        reader.value("--tokenizer", options.tokenizer) || reader.value("--device", options.device) ||
        reader.value("--dtype", options.dtype) || reader.values("--stop", options.stops) ||
        reader.value("--random-config", options.random_config) ||
        reader.integer("--max-new-tokens", options.max_new_tokens) || reader.integer("--top-k", options.top_k) ||
        reader.integer("--seed", options.seed) || reader.integer("--batch", options.batch) ||
        reader.integer("--prompt-len", options.prompt_len) || reader.integer("--new-tokens", options.new_tokens) ||
        reader.integer("--repeat", options.repeat) ||
        reader.value("--temperature", temperature) || reader.value("--top-p", top_p)) {
      continue;
    }
    if (reader.flag("--byte-level")) {
      options.byte_level = true;
    } else if (reader.flag("--random")) {
      options.random = true;
    } else if (reader.flag("--no-cuda-graphs")) {
      options.cuda_graphs = false;
    } else {
      reader.fail("unexpected argument '" + reader.peek() + "'");
    }
  }
  if (!reader.error().empty()) return usage_error(err, reader.error());
  try {
    if (!temperature.empty()) options.temperature = std::stod(temperature);
    if (!top_p.empty()) options.top_p = std::stod(top_p);
  } catch (const std::exception&) {
    return usage_error(err, "--temperature and --top-p need numbers");
  }
  if (!(options.temperature >= 0) || !std::isfinite(options.temperature) || !(options.top_p > 0 && options.top_p <= 1)) {
    return usage_error(err, "--temperature must be a finite number >= 0 and --top-p in (0, 1]");  // NaN fails both
  }
  if (options.top_k < 0) return usage_error(err, "--top-k must be >= 0 (0: no top-k cut)");
  if (options.model.empty() && !(is_bench && (options.random || !options.random_config.empty()))) {
    return usage_error(err, "missing --model");
  }
  if (is_bench) {
    if (options.batch < 1 || options.prompt_len < 1 || options.new_tokens < 2 || options.repeat < 1 ||
        options.repeat > 1000) {
      return usage_error(err, "--batch and --prompt-len must be >= 1, --new-tokens >= 2, --repeat 1..1000");
    }
    return bench(options, out, err);
  }
  if (options.prompt.empty()) return usage_error(err, "missing --prompt");
  if (options.max_new_tokens < 1) return usage_error(err, "--max-new-tokens must be >= 1");
  return generate(options, out, err);
}

}  // namespace torl::tools
