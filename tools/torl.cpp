// The `torl` command: dispatches to one subcommand per file (tools/*_command.cpp).
#include <array>
#include <iostream>
#include <string_view>

#include <caf/config.hpp>
#include <yaml-cpp/yaml.h>

#include "model/device.hpp"
#include "tools/commands.hpp"

namespace torl::tools {
namespace {

using CommandFn = int (*)(const Args&, std::ostream&, std::ostream&);

struct Command {
  std::string_view name;
  CommandFn run;
  std::string_view summary;  // one line for --help
};

constexpr std::array kCommands = {
    Command{"train", train_command, "GRPO training with tool-integrated rollouts"},
    Command{"eval", eval_command, "tool-integrated rollouts and scores on eval sets (and bench: the pipeline)"},
    Command{"sweep", sweep_command, "a grid or list of training runs, N at a time, with one table and plot"},
    Command{"replay", replay_command, "re-run recorded trajectories through the protocol and reward; report differences"},
    Command{"config", config_command, "validate a config and print it resolved"},
    Command{"sandbox", sandbox_command, "run code in the sandbox (exec), measure it (bench), serve it over HTTP (serve)"},
    Command{"grade", grade_command, "check answers against gold answers (and bench)"},
    Command{"tokenize", tokenize_command, "text to token ids with a HF tokenizer.json (and bench)"},
    Command{"detokenize", detokenize_command, "token ids to text"},
    Command{"generate", generate_command, "sample from a model (and bench)"},
    Command{"model", model_command, "check a model's forward and greedy generation against HF transformers"},
    Command{"demo", demo_command, "the laptop demo's pieces: its problems (data) and base model (pretrain)"},
};

constexpr std::string_view kVersion = "0.1.0";

void print_help(std::ostream& out) {
  out << "torl " << kVersion << ": tool-integrated reinforcement learning (ToRL) for language models\n\n"
      << "usage: torl COMMAND [ARGS...]    (torl COMMAND --help for its arguments)\n\ncommands:\n";
  for (const auto& command : kCommands) {
    out << "  " << command.name << std::string(12 - command.name.size(), ' ') << command.summary;
    out << "\n";
  }
  out << "\n  --help      this text\n  --version   versions of torl and its libraries\n";
}

}  // namespace

int torl_main(const Args& args, std::ostream& out, std::ostream& err) {
  if (args.empty()) {
    print_help(err);
    return kExitUsage;
  }
  const std::string& name = args[0];
  if (name == "--help" || name == "-h" || name == "help") {
    print_help(out);
    return kExitOk;
  }
  if (name == "--version") {
    out << "torl " << kVersion << " (" << model::runtime_summary() << ", CAF "
        << CAF_VERSION / 10000 << "." << CAF_VERSION / 100 % 100 << "." << CAF_VERSION % 100
        << ")\n";
    return kExitOk;
  }
  for (const auto& command : kCommands) {
    if (command.name != name) continue;
    return command.run(Args(args.begin() + 1, args.end()), out, err);
  }
  err << "torl: unknown command '" << name << "'; see torl --help\n";
  return kExitUsage;
}

}  // namespace torl::tools
