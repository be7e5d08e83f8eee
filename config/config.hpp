// The typed run configuration: one struct per top-level YAML section, each field with its default and
// a one-line comment. Defaults are the ToRL paper's settings (DESIGN.md §6) unless noted.
//
// A Config is built once by load_config() (config/load.hpp), validated in one pass, and then treated
// as immutable: each component receives only its own section, by const reference or by copy.
//
// Each section lists its fields once more in `visit`, with the rules the loader checks; the same
// visit drives loading, validation and printing, so a field added here is loaded, checked and printed
// without further code.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace torl::config {

using Path = std::filesystem::path;

// What the loader requires of a path field.
enum class PathKind {
  kAny,       // an output or a location made later: not checked
  kFile,      // must be an existing regular file
  kDir,       // must be an existing directory
  kFileOrDir  // must exist
};

// The rules of one field. Bounds apply to numbers; for lists, `required` means non-empty.
struct Rule {
  std::optional<double> min;  // lowest allowed value
  std::optional<double> max;  // highest allowed value
  bool min_open = false;      // min itself is not allowed
  bool max_open = false;      // max itself is not allowed
  bool required = false;      // the key must be given
  PathKind path = PathKind::kAny;
};

// ---- enumerations (each with the names used in YAML) ----

enum class LogLevel { kDebug, kInfo, kWarn, kError };
constexpr auto enum_names(LogLevel) {
  return std::array{std::pair{LogLevel::kDebug, "debug"}, std::pair{LogLevel::kInfo, "info"},
                    std::pair{LogLevel::kWarn, "warn"}, std::pair{LogLevel::kError, "error"}};
}

enum class DType { kFloat32, kBFloat16, kFloat16 };
constexpr auto enum_names(DType) {
  return std::array{std::pair{DType::kFloat32, "float32"}, std::pair{DType::kBFloat16, "bfloat16"},
                    std::pair{DType::kFloat16, "float16"}};
}

enum class PromptTemplate { kTorl, kRaw };
constexpr auto enum_names(PromptTemplate) {
  return std::array{std::pair{PromptTemplate::kTorl, "torl"}, std::pair{PromptTemplate::kRaw, "raw"}};
}

enum class RolloutMode { kAsync, kRounds };
constexpr auto enum_names(RolloutMode) {
  return std::array{std::pair{RolloutMode::kAsync, "async"}, std::pair{RolloutMode::kRounds, "rounds"}};
}

// Where the generators run (DESIGN.md §10). colocated: on each learner process's device, beside the
// learner (veRL's hybrid engine); separate: on rollout.device, the weights broadcast to it after each
// step (AReaL), so that with max_staleness >= 1 the update and the next rollouts run side by side.
enum class Placement { kColocated, kSeparate };
constexpr auto enum_names(Placement) {
  return std::array{std::pair{Placement::kColocated, "colocated"}, std::pair{Placement::kSeparate, "separate"}};
}

// The generators' KV cache while the learner updates (colocated placement): kept allocated, or freed
// whenever the generators have no sequence (as between the steps of an on-policy run), so the update
// can use its memory; it is allocated again for the next rollouts.
enum class CacheDuringUpdate { kKeep, kFree };
constexpr auto enum_names(CacheDuringUpdate) {
  return std::array{std::pair{CacheDuringUpdate::kKeep, "keep"}, std::pair{CacheDuringUpdate::kFree, "free"}};
}

enum class ToolBackend { kLocal, kSandboxFusion };
constexpr auto enum_names(ToolBackend) {
  return std::array{std::pair{ToolBackend::kLocal, "local"},
                    std::pair{ToolBackend::kSandboxFusion, "sandbox_fusion"}};
}

enum class ToolFeedback { kTorl, kFull, kNone };
constexpr auto enum_names(ToolFeedback) {
  return std::array{std::pair{ToolFeedback::kTorl, "torl"}, std::pair{ToolFeedback::kFull, "full"},
                    std::pair{ToolFeedback::kNone, "none"}};
}

// A "```output" stop with no closed ```python block before it (a void call). kTorl, ToRL's rule: it
// spends one of the C rounds and the dangling "```output" leaves the context and the trajectory.
// kIgnore, torl's rule before: no round spent, "```output" stays (the model then writes an output
// itself, which is trained on); for replaying traces recorded with it.
enum class VoidCallRule { kTorl, kIgnore };
constexpr auto enum_names(VoidCallRule) {
  return std::array{std::pair{VoidCallRule::kTorl, "torl"}, std::pair{VoidCallRule::kIgnore, "ignore"}};
}

// Which trajectories reward.exec_error_penalty applies to. kTorl, ToRL's rule: the last execution did
// not pass, where passing is exit code 0 or any stdout. kAny: some execution did not end with status
// ok. Trajectories without an execution are never penalized.
enum class ExecErrorRule { kTorl, kAny };
constexpr auto enum_names(ExecErrorRule) {
  return std::array{std::pair{ExecErrorRule::kTorl, "torl"}, std::pair{ExecErrorRule::kAny, "any"}};
}

enum class LossAggregation { kTokenMean, kSequenceMean };
constexpr auto enum_names(LossAggregation) {
  return std::array{std::pair{LossAggregation::kTokenMean, "token_mean"},
                    std::pair{LossAggregation::kSequenceMean, "seq_mean"}};
}

enum class LrSchedule { kConstant, kLinear };
constexpr auto enum_names(LrSchedule) {
  return std::array{std::pair{LrSchedule::kConstant, "constant"}, std::pair{LrSchedule::kLinear, "linear"}};
}

enum class KlEstimator { kK1, kK3 };
constexpr auto enum_names(KlEstimator) {
  return std::array{std::pair{KlEstimator::kK1, "k1"}, std::pair{KlEstimator::kK3, "k3"}};
}

// Where the PPO ratio's π_old log-probs come from (algorithm.old_logprobs).
enum class OldLogprobs { kTrainer, kSampler };
constexpr auto enum_names(OldLogprobs) {
  return std::array{std::pair{OldLogprobs::kTrainer, "trainer"}, std::pair{OldLogprobs::kSampler, "sampler"}};
}

// ---- sections ----

struct RunConfig {
  std::string name = "torl";     // run name; the run folder is output_dir/name
  Path output_dir = "runs";      // parent of run folders (checkpoints, metrics, traces)
  int64_t seed = 1;              // seeds data order, sampling and model init
  LogLevel log_level = LogLevel::kInfo;  // stderr verbosity
  int metrics_port = 0;          // HTTP /healthz and /metrics on 127.0.0.1; 0 = off
  // One intra-op thread and LibTorch's deterministic algorithms: the same config gives bit-identical
  // weights on any machine (without it: on one machine; the thread count follows the CPUs), at the cost
  // of the matmuls' parallel speed-up.
  bool deterministic = false;

  template <class V>
  void visit(V& v) {
    v("name", name);
    v("output_dir", output_dir);
    v("seed", seed, {.min = 0});
    v("log_level", log_level);
    v("metrics_port", metrics_port, {.min = 0, .max = 65535});
    v("deterministic", deterministic);
  }
};

struct ModelConfig {
  Path path;                     // HF folder: config.json, *.safetensors, tokenizer.json
  Path tokenizer;                // tokenizer.json or its folder; empty = model.path
  bool byte_level_tokenizer = false;  // byte ids 0..255 instead of a tokenizer.json (tiny test models)
  std::string device = "cpu";    // "cpu", "cuda" or "cuda:N"
  DType dtype = DType::kFloat32;  // weights and activations (bfloat16 on GPU for 1.5B/7B)
  // Gradient checkpointing per decoder layer in the learner's forward: each layer keeps only its input
  // and is run again in the backward (activation memory about one [batch, length, hidden] per layer,
  // about a third more compute); the same gradients.
  bool gradient_checkpointing = false;

  template <class V>
  void visit(V& v) {
    v("path", path, {.required = true, .path = PathKind::kDir});
    v("tokenizer", tokenizer, {.path = PathKind::kFileOrDir});
    v("byte_level_tokenizer", byte_level_tokenizer);
    v("device", device);
    v("dtype", dtype);
    v("gradient_checkpointing", gradient_checkpointing);
  }
};

struct DataConfig {
  std::vector<Path> train_files;  // JSONL with one problem per line
  std::vector<Path> eval_files;   // JSONL eval sets, scored by `torl eval` and train.eval_every
  PromptTemplate prompt_template = PromptTemplate::kTorl;  // torl: the paper's prompt; raw: problem as is
  std::string prompt_key = "problem";  // JSONL field with the problem text
  std::string answer_key = "answer";   // JSONL field with the gold answer
  int max_prompt_tokens = 400;         // longer prompts are skipped and counted
  bool shuffle = true;                 // shuffle each epoch, seeded by run.seed

  template <class V>
  void visit(V& v) {
    v("train_files", train_files, {.path = PathKind::kFile});  // torl train requires it
    v("eval_files", eval_files, {.path = PathKind::kFile});
    v("template", prompt_template);
    v("prompt_key", prompt_key);
    v("answer_key", answer_key);
    v("max_prompt_tokens", max_prompt_tokens, {.min = 1});
    v("shuffle", shuffle);
  }
};

struct RolloutConfig {
  RolloutMode mode = RolloutMode::kAsync;  // async: decode while code runs; rounds: ToRL's loop
  int prompts_per_step = 128;      // prompts sampled per training step
  int samples_per_prompt = 16;     // GRPO group size n
  int max_batch = 64;              // sequences decoding at once per generator (async mode keeps up to
                                   // min(tool.max_pending, max_batch) more KV rows for paused ones)
  int max_response_tokens = 3072;  // generated plus tool tokens per trajectory
  double temperature = 1.0;        // 0 = greedy
  double top_p = 1.0;              // nucleus sampling; 1 = off
  int top_k = 0;                   // 0 = off
  int generators = 1;              // generator actors (one per device)
  Placement placement = Placement::kColocated;
  // placement separate: the generators' device. "cuda": each process the GPU after the learners' GPUs
  // on its machine (cuda:LOCAL_WORLD_SIZE + LOCAL_RANK); "cuda:N" or "cpu" as written.
  std::string device;
  CacheDuringUpdate cache_during_update = CacheDuringUpdate::kKeep;

  template <class V>
  void visit(V& v) {
    v("mode", mode);
    v("prompts_per_step", prompts_per_step, {.min = 1});
    v("samples_per_prompt", samples_per_prompt, {.min = 1});
    v("max_batch", max_batch, {.min = 1});
    v("max_response_tokens", max_response_tokens, {.min = 1});
    v("temperature", temperature, {.min = 0});
    v("top_p", top_p, {.min = 0, .max = 1, .min_open = true});
    v("top_k", top_k, {.min = 0});
    v("generators", generators, {.min = 1});
    v("placement", placement);
    v("device", device);
    v("cache_during_update", cache_during_update);
  }
};

struct SandboxFusionConfig {
  std::string url;               // e.g. http://127.0.0.1:8080; used when tool.backend is sandbox_fusion
  int max_concurrency = 32;      // requests in flight to the cluster
  int max_retries = 3;           // on connection errors and 5xx, with backoff

  template <class V>
  void visit(V& v) {
    v("url", url);
    v("max_concurrency", max_concurrency, {.min = 1});
    v("max_retries", max_retries, {.min = 0});
  }
};

// How sandbox workers are isolated. Everything is on by default; switching a layer off is for
// machines that lack it and is logged as a warning at start.
struct IsolationConfig {
  bool bubblewrap = true;        // namespaces: no network, read-only /usr, private /tmp and PIDs
  bool seccomp = true;           // deny sockets other than AF_UNIX, ptrace, mount, namespaces, ...
  bool rlimits = true;           // address space, CPU time, file size, processes per snippet
  int uid = 65534;               // unprivileged uid the workers run as when torl runs as root; -1 = keep
  int max_processes = 64;        // processes and threads per sandbox (RLIMIT_NPROC)
  int tmp_mb = 64;               // size of the private /tmp (bubblewrap only)
  int file_mb = 16;              // largest file a snippet may write (RLIMIT_FSIZE)

  template <class V>
  void visit(V& v) {
    v("bubblewrap", bubblewrap);
    v("seccomp", seccomp);
    v("rlimits", rlimits);
    v("uid", uid, {.min = -1});
    v("max_processes", max_processes, {.min = 4});
    v("tmp_mb", tmp_mb, {.min = 1});
    v("file_mb", file_mb, {.min = 1});
  }
};

struct ToolConfig {
  int max_calls = 1;             // C: code executions per trajectory; 0 = no tool
  ToolFeedback feedback = ToolFeedback::kTorl;  // how results are shown: torl, full or none
  VoidCallRule void_calls = VoidCallRule::kTorl;  // "```output" with no code: torl or ignore
  ToolBackend backend = ToolBackend::kLocal;    // local worker pool or a SandboxFusion cluster
  Path python = "/usr/bin/python3";  // interpreter for local workers
  int workers = 2;               // warm Python processes in the local pool
  // The workers' CPU priority below torl's (nice increment, 0-19; capped at nice 19): torl's own
  // threads get the CPU first where snippets share its cores (the generator's thread, whose every delay
  // stalls a whole decode batch)
  int worker_nice = 10;
  int timeout_ms = 10000;        // wall-clock limit per execution
  int memory_mb = 1024;          // address-space limit per execution
  int max_output_bytes = 65536;  // stdout and stderr are each cut here
  int max_queue = 1024;          // executions waiting for a worker before new ones are refused
  int max_pending = 64;          // tool calls in flight per generator (backpressure)
  IsolationConfig isolation;     // how local workers are sandboxed
  SandboxFusionConfig sandbox_fusion;  // client settings for backend: sandbox_fusion

  template <class V>
  void visit(V& v) {
    v("max_calls", max_calls, {.min = 0});
    v("feedback", feedback);
    v("void_calls", void_calls);
    v("backend", backend);
    v("python", python, {.path = PathKind::kFile});
    v("worker_nice", worker_nice, {.min = 0, .max = 19});
    v("workers", workers, {.min = 1, .max = 1024});
    v("timeout_ms", timeout_ms, {.min = 0, .min_open = true});
    v("memory_mb", memory_mb, {.min = 16});
    v("max_output_bytes", max_output_bytes, {.min = 0, .min_open = true});
    v("max_queue", max_queue, {.min = 1});
    v("max_pending", max_pending, {.min = 1});
    v.section("isolation", isolation);
    v.section("sandbox_fusion", sandbox_fusion);
  }
};

struct RewardConfig {
  double correct = 1.0;          // boxed answer equivalent to the gold answer
  double wrong = -1.0;           // boxed answer not equivalent (variant: -0.5)
  double no_answer = -1.0;       // no \boxed{} in the response
  double exec_error_penalty = 0.0;  // added when the trajectory's code failed (variant: -0.5)
  ExecErrorRule exec_error_rule = ExecErrorRule::kTorl;  // which code failed: torl (last run) or any
  bool answer_fallbacks = false;    // also accept "the answer is X" when there is no \boxed{}

  template <class V>
  void visit(V& v) {
    v("correct", correct);
    v("wrong", wrong);
    v("no_answer", no_answer);
    v("exec_error_penalty", exec_error_penalty, {.max = 0});
    v("exec_error_rule", exec_error_rule);
    v("answer_fallbacks", answer_fallbacks);
  }
};

struct AlgorithmConfig {
  double clip_low = 0.2;         // PPO ratio clip below 1
  double clip_high = 0.2;        // PPO ratio clip above 1 (clip-higher: e.g. 0.28)
  LossAggregation loss_agg = LossAggregation::kTokenMean;  // token_mean or seq_mean
  double adv_epsilon = 1e-6;     // advantage = (r - mean) / (std + adv_epsilon)
  double kl_coef = 0.0;          // KL to the frozen initial model; 0 = no reference model
  KlEstimator kl_estimator = KlEstimator::kK3;  // k1 or k3
  double entropy_coef = 0.0;     // entropy bonus
  int max_staleness = 0;         // policy versions data may lag; 0 = strictly on-policy
  bool filter_equal_groups = false;  // drop groups whose rewards are all equal
  // π_old of the PPO ratio. trainer (as ToRL and veRL): the training forward's own log-probs under the
  // weights before the update, so the ratio starts at exactly 1 and a difference between the decode
  // path (bf16, KV cache, other kernels) and the training forward is not clipped as if it were policy
  // change. torl takes one optimizer step per batch, so these are the update's forward values, detached:
  // no extra forward pass. sampler: the log-probs returned by generation (an importance correction for
  // data up to max_staleness versions old). Either way metrics report policy/sampler_gap, the mean
  // |sampler - trainer| log-prob over model tokens.
  OldLogprobs old_logprobs = OldLogprobs::kTrainer;

  template <class V>
  void visit(V& v) {
    v("clip_low", clip_low, {.min = 0, .max = 1});
    v("clip_high", clip_high, {.min = 0});
    v("loss_agg", loss_agg);
    v("adv_epsilon", adv_epsilon, {.min = 0, .min_open = true});
    v("kl_coef", kl_coef, {.min = 0});
    v("kl_estimator", kl_estimator);
    v("entropy_coef", entropy_coef, {.min = 0});
    v("max_staleness", max_staleness, {.min = 0});
    v("filter_equal_groups", filter_equal_groups);
    v("old_logprobs", old_logprobs);
  }
};

struct TrainConfig {
  int steps = 100;               // training steps (one step = prompts_per_step prompts)
  double lr = 1e-6;              // AdamW learning rate
  double beta1 = 0.9;            // AdamW beta1
  double beta2 = 0.999;          // AdamW beta2
  double weight_decay = 0.01;    // AdamW decoupled weight decay
  double grad_clip = 1.0;        // max global grad norm; 0 = off
  int warmup_steps = 0;          // linear learning-rate warmup
  LrSchedule lr_schedule = LrSchedule::kConstant;  // after warmup: constant, or linear down to lr/10 at `steps`
  int micro_batch = 8;           // sequences per forward/backward (gradient accumulation)
  // The optimizer's weights and AdamW state. float32 (the default, as ToRL and veRL): with a narrower
  // model.dtype (bfloat16) the forward and backward run in model.dtype, the gradients are accumulated
  // and summed over ranks in float32 into float32 master weights, AdamW steps those, and the policy
  // and the generators get a model.dtype copy; checkpoints hold the masters and the state in float32
  // (resume is exact). The same as model.dtype: no copy (pure bfloat16 loses small updates: at lr 1e-6
  // most round away). Never narrower than model.dtype.
  DType master_dtype = DType::kFloat32;
  // > 0: micro-batches packed by tokens instead: the step's sequences sorted by length and packed while
  // sequences x the longest stays within this budget (and at most micro_batch sequences), so padding is
  // small and memory per forward is bounded. The loss is the same token mean whatever the packing.
  int micro_batch_tokens = 0;
  // Positions whose vocabulary logits exist at once when scoring tokens in the update: the lm_head and
  // softmax run over this many at a time and the backward recomputes them, so peak memory stays at
  // about 4 x logits_chunk x vocabulary floats whatever the batch and length; 0 = all at once (kept by
  // autograd for the backward). The same values and gradients either way.
  int logits_chunk = 1024;
  // Trajectories that the infrastructure failed (a sandbox fault, a reward that failed or timed out)
  // say nothing about the policy: they are left out of their group (a group left
  // with fewer than 2 is skipped) and counted in trajectories/infra_failed. A step where more than this
  // fraction of its trajectories failed so ends the run with the first one's reason.
  double max_infra_failures = 0.1;
  int checkpoint_every = 50;     // steps between checkpoints; 0 = only at the end
  int keep_checkpoints = 3;      // newest checkpoints kept
  int eval_every = 0;            // steps between evals on data.eval_files; 0 = off
  int nproc = 1;                 // data-parallel learner processes on this machine

  template <class V>
  void visit(V& v) {
    v("steps", steps, {.min = 0});
    v("lr", lr, {.min = 0, .min_open = true});
    v("beta1", beta1, {.min = 0, .max = 1, .max_open = true});
    v("beta2", beta2, {.min = 0, .max = 1, .max_open = true});
    v("weight_decay", weight_decay, {.min = 0});
    v("grad_clip", grad_clip, {.min = 0});
    v("warmup_steps", warmup_steps, {.min = 0});
    v("lr_schedule", lr_schedule);
    v("micro_batch", micro_batch, {.min = 1});
    v("master_dtype", master_dtype);
    v("micro_batch_tokens", micro_batch_tokens, {.min = 0});
    v("logits_chunk", logits_chunk, {.min = 0});
    v("max_infra_failures", max_infra_failures, {.min = 0, .max = 1});
    v("checkpoint_every", checkpoint_every, {.min = 0});
    v("keep_checkpoints", keep_checkpoints, {.min = 1});
    v("eval_every", eval_every, {.min = 0});
    v("nproc", nproc, {.min = 1, .max = 1024});
  }
};

// `torl eval` and train.eval_every: how the eval sets are rolled out (greedy, one sample, like the paper).
struct EvalConfig {
  int samples = 1;               // samples per problem; accuracy is the mean over them
  double temperature = 0.0;      // 0 = greedy
  double top_p = 1.0;            // nucleus sampling; 1 = off
  int max_problems = 0;          // first N problems of each eval set; 0 = all
  Path output_dir;               // per-problem JSONL and the table; empty = run.output_dir/eval

  template <class V>
  void visit(V& v) {
    v("samples", samples, {.min = 1});
    v("temperature", temperature, {.min = 0});
    v("top_p", top_p, {.min = 0, .max = 1, .min_open = true});
    v("max_problems", max_problems, {.min = 0});
    v("output_dir", output_dir);
  }
};

struct TraceConfig {
  bool enabled = false;          // record actor messages and whole trajectories
  Path dir;                      // where traces go; empty = the run folder
  bool trajectories = true;      // also record tokens, text, tool calls and rewards for replay

  template <class V>
  void visit(V& v) {
    v("enabled", enabled);
    v("dir", dir);
    v("trajectories", trajectories);
  }
};

struct Config {
  RunConfig run;
  ModelConfig model;
  DataConfig data;
  RolloutConfig rollout;
  ToolConfig tool;
  RewardConfig reward;
  AlgorithmConfig algorithm;
  TrainConfig train;
  EvalConfig eval;
  TraceConfig trace;

  template <class V>
  void visit(V& v) {
    v.section("run", run);
    v.section("model", model);
    v.section("data", data);
    v.section("rollout", rollout);
    v.section("tool", tool);
    v.section("reward", reward);
    v.section("algorithm", algorithm);
    v.section("train", train);
    v.section("eval", eval);
    v.section("trace", trace);
  }
};

}  // namespace torl::config
