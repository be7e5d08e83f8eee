// The `torl` subcommands. Each takes its arguments (after the subcommand name) and the streams to
// write to, and returns the process exit code: 0 success, 1 the work failed, 2 bad usage or input.
// Only tools/ prints to stdout; everything else logs to stderr.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace torl::tools {

using Args = std::vector<std::string>;

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

// torl config check FILE [--set KEY=VALUE]... [--strict]
int config_command(const Args& args, std::ostream& out, std::ostream& err);

// torl sandbox exec|bench ...
int sandbox_command(const Args& args, std::ostream& out, std::ostream& err);

// torl grade --gold G --pred P | --jsonl FILE | bench ...
int grade_command(const Args& args, std::ostream& out, std::ostream& err);

// torl tokenize --tokenizer DIR_OR_FILE [--jsonl FILE] | bench --tokenizer ... --file F [--repeat N]
int tokenize_command(const Args& args, std::ostream& out, std::ostream& err);

// torl detokenize --tokenizer DIR_OR_FILE [--jsonl FILE]
int detokenize_command(const Args& args, std::ostream& out, std::ostream& err);

// torl generate --model DIR --prompt TEXT ... | generate bench ...
int generate_command(const Args& args, std::ostream& out, std::ostream& err);

// torl eval CONFIG [--set ...] [--output DIR] | eval bench ...
int eval_command(const Args& args, std::ostream& out, std::ostream& err);

// torl train CONFIG [--set ...] [--resume]
int train_command(const Args& args, std::ostream& out, std::ostream& err);

// torl replay TRACE [--trajectory ID]... [--live-sandbox] [--timeline FILE]: recorded rollouts re-run.
int replay_command(const Args& args, std::ostream& out, std::ostream& err);

// torl sweep SWEEP.yaml [--parallel N] [--base CONFIG] [--set K=V]... [--dry-run]: runs of one config.
int sweep_command(const Args& args, std::ostream& out, std::ostream& err);

// torl model check: a model's outputs against reference outputs (HF transformers).
int model_command(const Args& args, std::ostream& out, std::ostream& err);

// torl demo data ...
int demo_command(const Args& args, std::ostream& out, std::ostream& err);

// The whole command line after the program name; dispatches to a subcommand (tools/torl.cpp).
int torl_main(const Args& args, std::ostream& out, std::ostream& err);

}  // namespace torl::tools
