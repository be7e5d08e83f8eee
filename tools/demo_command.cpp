// torl demo: the pieces of the laptop demo. `torl demo data` writes the demo's problems as JSONL train
// and eval splits, deterministic by seed (demo/tasks.hpp); `torl demo pretrain` makes the demo's base
// model: a tiny Qwen2 over byte ids, trained (PolicyTrainer's supervised mode) on a corpus of solutions
// in the ToRL prompt format that answer directly (often wrongly) or use the interpreter.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iomanip>

#include "actors/dataset.hpp"
#include "common/files.hpp"
#include "common/random.hpp"
#include "demo/tasks.hpp"
#include "model/policy_trainer.hpp"
#include "model/qwen2.hpp"
#include "model/tokenizer.hpp"
#include "tools/arg_reader.hpp"
#include "tools/commands.hpp"

namespace torl::tools {
namespace {

constexpr std::string_view kUsage =
    "usage: torl demo data [--out DIR] [--seed S] [--train N] [--eval N]\n"
    "       torl demo pretrain [--out DIR] [--seed S] [--steps N] [--batch B] [--lr LR] [--tool-rate P]\n"
    "\n"
    "data writes DIR/train.jsonl and DIR/eval.jsonl (default data/demo, seed 1, 4000 and 300 problems):\n"
    "products of multi-digit numbers, modular powers, sums of squares and counts of multiples, where the\n"
    "interpreter helps, and small sums and doublings, where it does not. The eval split uses its own\n"
    "stream, so the splits share no problem by construction of the seeds.\n"
    "\n"
    "pretrain makes the demo's base model in DIR (default models/demo: config.json, model.safetensors):\n"
    "a Qwen2 of 4 layers, width 128, over byte ids (<eos> = 256), from random weights (seed S, default 1)\n"
    "trained for N steps (default 2000) of B sequences (default 32) at peak learning rate LR (default\n"
    "2e-3, linear warmup and decay) on problems of its own stream in the ToRL prompt format, answered\n"
    "with the interpreter with probability P (default 0.2) and directly otherwise. It saves every 250\n"
    "steps and at the end. The shipped models/demo was made by `torl demo pretrain` with the defaults.\n";

int usage_error(std::ostream& err, const std::string& message) {
  err << "torl demo: " << message << "\n" << kUsage;
  return kExitUsage;
}

int write_split(const std::filesystem::path& file, uint64_t seed, long count, const std::string& prefix,
                std::ostream& err) {
  std::ofstream out(file);
  for (long i = 0; i < count; ++i) {
    out << to_jsonl_line(demo::to_json(demo::make_task(seed, i), prefix + std::to_string(i))) << '\n';
  }
  out.flush();
  if (!out) return err << "torl demo data: writing '" << file.string() << "' failed\n", kExitFailed;
  return kExitOk;
}

int data(const Args& args, std::ostream& out, std::ostream& err) {
  std::string dir = "data/demo";
  long seed = 1, train = 4000, eval = 300;
  ArgReader reader(args);
  while (!reader.done()) {
    if (reader.value("--out", dir) || reader.integer("--seed", seed) || reader.integer("--train", train) ||
        reader.integer("--eval", eval)) {
      continue;
    }
    reader.fail("unexpected argument '" + reader.peek() + "'");
  }
  if (!reader.error().empty()) return usage_error(err, reader.error());
  if (seed < 0 || train < 1 || eval < 1) return usage_error(err, "--seed must be >= 0, --train and --eval >= 1");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return err << "torl demo data: cannot create '" << dir << "': " << ec.message() << "\n", kExitFailed;
  const auto s = static_cast<uint64_t>(seed);
  if (int code = write_split(std::filesystem::path(dir) / "train.jsonl", 2 * s, train, "train-", err)) return code;
  if (int code = write_split(std::filesystem::path(dir) / "eval.jsonl", 2 * s + 1, eval, "eval-", err)) return code;
  out << "torl demo data: " << train << " train and " << eval << " eval problems in " << dir << "\n";
  return kExitOk;
}

// The demo model's shape: about 0.9M parameters, 3.5 MB in float32.
model::Qwen2Config demo_model_config() {
  model::Qwen2Config c;
  c.vocab_size = 257;  // the bytes and <eos>
  c.hidden_size = 128;
  c.intermediate_size = 384;
  c.num_hidden_layers = 4;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.tie_word_embeddings = true;
  c.max_position_embeddings = 1024;
  c.eos_token_id = 256;
  return c;
}

constexpr int32_t kEos = 256;
constexpr uint64_t kPretrainStream = 1000;  // problem stream seed + S; data uses 2S and 2S + 1

Status save_model(const std::filesystem::path& dir, const model::Qwen2Model& policy) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status(StatusCode::kIoError, "cannot create '" + dir.string() + "': " + ec.message());
  if (Status s = write_file_atomically(dir / "config.json", policy.config().to_json().dump(2) + "\n"); !s.ok()) return s;
  return model::write_safetensors(dir / "model.safetensors", policy.named_parameters());
}

int pretrain(const Args& args, std::ostream& out, std::ostream& err) {
  std::string dir = "models/demo", lr_text = "2e-3", rate_text = "0.2";
  long seed = 1, steps = 2000, batch = 32;
  ArgReader reader(args);
  while (!reader.done()) {
    if (reader.value("--out", dir) || reader.integer("--seed", seed) || reader.integer("--steps", steps) ||
        reader.integer("--batch", batch) || reader.value("--lr", lr_text) || reader.value("--tool-rate", rate_text)) {
      continue;
    }
    reader.fail("unexpected argument '" + reader.peek() + "'");
  }
  if (!reader.error().empty()) return usage_error(err, reader.error());
  char* end = nullptr;
  const double lr = std::strtod(lr_text.c_str(), &end);
  if (*end != '\0' || !(lr > 0)) return usage_error(err, "--lr needs a number > 0 (got '" + lr_text + "')");
  const double tool_rate = std::strtod(rate_text.c_str(), &end);
  if (*end != '\0' || !(tool_rate >= 0 && tool_rate <= 1)) {
    return usage_error(err, "--tool-rate needs a number in [0, 1] (got '" + rate_text + "')");
  }
  if (seed < 0 || steps < 1 || batch < 1) return usage_error(err, "--seed must be >= 0, --steps and --batch >= 1");

  // ---- the model: random weights of the demo shape ----
  const model::Qwen2Config config = demo_model_config();
  torch::manual_seed(static_cast<uint64_t>(seed));
  auto policy = model::Qwen2Model::from_tensors(config, model::random_weights(config, torch::kFloat32), "random",
                                                torch::kCPU, torch::kFloat32);
  if (!policy) return err << "torl demo pretrain: " << policy.status().message() << "\n", kExitFailed;

  model::PolicyTrainerOptions options;
  options.supervised = true;
  options.train.lr = lr;
  options.train.warmup_steps = static_cast<int>(std::min<long>(100, steps / 10));
  options.train.micro_batch = static_cast<int>(batch);
  options.train.steps = static_cast<int>(steps);
  options.train.lr_schedule = config::LrSchedule::kLinear;
  auto trainer = model::PolicyTrainer::create(*policy, options);
  if (!trainer) return err << "torl demo pretrain: " << trainer.status().message() << "\n", kExitFailed;

  // ---- the corpus: step k's sequences are problems [kB, (k+1)B) of the pre-training stream ----
  const model::Tokenizer tokenizer = model::Tokenizer::byte_level({"<eos>"});
  const auto sequences = [&](long step) {
    std::vector<model::PolicySample> samples;
    for (long i = 0; i < batch; ++i) {
      const int64_t index = step * batch + i;
      const demo::Task task = demo::make_task(kPretrainStream + static_cast<uint64_t>(seed), index);
      Stream r(static_cast<uint64_t>(index));
      const bool use_tool = r.chance(tool_rate);
      model::PolicySample s;
      s.prompt = tokenizer.encode(actors::format_prompt(config::PromptTemplate::kTorl, task.problem));
      s.response = tokenizer.encode(demo::corpus_response(task, use_tool, r.next()));
      s.response.push_back(kEos);
      s.loss_mask.assign(s.response.size(), 1);
      s.old_logprobs.assign(s.response.size(), 0.0f);
      s.advantage = 1.0f;
      samples.push_back(std::move(s));
    }
    return samples;
  };

  out << "torl demo pretrain: " << steps << " steps of " << batch << " sequences into " << dir << "\n" << std::flush;
  const auto start = std::chrono::steady_clock::now();
  double loss_sum = 0;
  long loss_count = 0;
  for (long step = 0; step < steps; ++step) {
    auto stats = trainer->step(sequences(step));
    if (!stats) return err << "torl demo pretrain: step " << step + 1 << ": " << stats.status().message() << "\n", kExitFailed;
    loss_sum += stats->loss;
    ++loss_count;
    const bool last = step + 1 == steps;
    if ((step + 1) % 50 == 0 || last) {
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      out << "step " << std::setw(5) << step + 1 << "/" << steps << "  loss " << std::fixed << std::setprecision(4)
          << loss_sum / static_cast<double>(loss_count) << "  lr " << std::scientific << std::setprecision(2)
          << stats->lr << std::fixed << std::setprecision(0) << "  " << seconds << " s, about "
          << seconds / static_cast<double>(step + 1) * static_cast<double>(steps - step - 1) << " s left\n" << std::flush;
      loss_sum = 0;
      loss_count = 0;
    }
    if ((step + 1) % 250 == 0 || last) {
      if (Status s = save_model(dir, *policy); !s.ok()) return err << "torl demo pretrain: " << s.message() << "\n", kExitFailed;
    }
  }
  out << "torl demo pretrain: saved " << dir << "/config.json and model.safetensors\n";
  return kExitOk;
}

}  // namespace

int demo_command(const Args& args, std::ostream& out, std::ostream& err) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    (args.empty() ? err : out) << kUsage;
    return args.empty() ? kExitUsage : kExitOk;
  }
  if (args[0] == "data") return data(Args(args.begin() + 1, args.end()), out, err);
  if (args[0] == "pretrain") return pretrain(Args(args.begin() + 1, args.end()), out, err);
  return usage_error(err, "unknown subcommand '" + args[0] + "'");
}

}  // namespace torl::tools
