// Runs a subcommand in-process and keeps its exit code and both streams, for the tools tests.
#pragma once

#include <sstream>
#include <string>

#include "tools/commands.hpp"

namespace torl::testing {

struct CommandRun {
  int code;
  std::string out;
  std::string err;
};

template <class Command>
CommandRun run_command(Command command, const tools::Args& args) {
  std::ostringstream out, err;
  const int code = command(args, out, err);
  return {code, out.str(), err.str()};
}

}  // namespace torl::testing
