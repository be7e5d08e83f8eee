// Reads a subcommand's arguments in order: flags with values (`--name VALUE` or `--name=VALUE`),
// switches, and positionals, with one error message for the first problem. Used by the *_command.cpp
// files so that every subcommand treats its arguments the same way.
#pragma once

#include <string>
#include <vector>

#include "tools/commands.hpp"

namespace torl::tools {

class ArgReader {
 public:
  explicit ArgReader(const Args& args) : args_(args) {}

  // True at the end of the arguments or after the first error; every reader below then does nothing.
  bool done() const { return index_ >= args_.size() || !error_.empty(); }
  std::string peek() const { return index_ < args_.size() ? args_[index_] : std::string(); }

  // When the next argument is `name`, consumes it and its value into `value` and returns true.
  bool value(const std::string& name, std::string& value) {
    if (done()) return false;
    const std::string& arg = args_[index_];
    if (arg.rfind(name + "=", 0) == 0) {
      value = arg.substr(name.size() + 1);
      ++index_;
      return true;
    }
    if (arg != name) return false;
    if (index_ + 1 >= args_.size()) {
      error_ = name + " needs a value";
      return false;
    }
    value = args_[index_ + 1];
    index_ += 2;
    return true;
  }

  // Same, for a flag that may repeat.
  bool values(const std::string& name, std::vector<std::string>& values) {
    std::string one;
    if (!value(name, one)) return false;
    values.push_back(one);
    return true;
  }

  // Same, for an integer value.
  bool integer(const std::string& name, long& out) {
    std::string text;
    if (!value(name, text)) return false;
    char* end = nullptr;
    out = std::strtol(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0') error_ = name + " needs an integer (got '" + text + "')";
    return true;
  }

  // When the next argument is the switch `name`, consumes it and returns true.
  bool flag(const std::string& name) {
    if (done() || args_[index_] != name) return false;
    ++index_;
    return true;
  }

  // Consumes the next argument as a positional one (an error if it looks like a flag).
  std::string positional() {
    if (done()) return {};
    const std::string& arg = args_[index_++];
    if (arg.rfind("-", 0) == 0 && arg != "-") error_ = "unexpected argument '" + arg + "'";
    return arg;
  }

  // Takes the next argument into `into` when `into` is still empty and the argument is not a flag: a
  // command's one positional argument (CONFIG, TRACE, ...), wherever it stands among the flags.
  bool first_positional(std::string& into) {
    if (!into.empty() || done() || args_[index_].rfind("--", 0) == 0) return false;
    into = positional();
    return true;
  }

  // Records `message` unless an earlier problem was already recorded (the first one is reported).
  void fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
  }
  const std::string& error() const { return error_; }

 private:
  const Args& args_;
  size_t index_ = 0;
  std::string error_;
};

}  // namespace torl::tools
