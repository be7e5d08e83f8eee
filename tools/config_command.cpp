// torl config check: load, validate and print a resolved config.
#include <string_view>

#include "config/load.hpp"
#include "tools/arg_reader.hpp"
#include "tools/commands.hpp"

namespace torl::tools {
namespace {

constexpr std::string_view kUsage =
    "usage: torl config check FILE [--set KEY=VALUE]... [--strict]\n"
    "\n"
    "Loads FILE (with its includes) and the overrides, validates every key, and prints the resolved\n"
    "config as YAML on stdout (exit 0), or every problem on stderr as FILE:LINE: KEY: MESSAGE (exit 2).\n"
    "Input paths that do not exist on this machine are warnings; --strict makes them errors, as they\n"
    "are for `torl train` and `torl eval`.\n";

}  // namespace

int config_command(const Args& args, std::ostream& out, std::ostream& err) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    (args.empty() ? err : out) << kUsage;
    return args.empty() ? kExitUsage : kExitOk;
  }
  if (args[0] != "check") {
    err << "torl config: unknown action '" << args[0] << "'\n" << kUsage;
    return kExitUsage;
  }

  std::string file;
  config::LoadOptions options;
  options.require_paths = false;
  const Args rest(args.begin() + 1, args.end());
  ArgReader reader(rest);
  while (!reader.done()) {
    if (reader.values("--set", options.overrides)) continue;
    if (reader.flag("--strict")) {
      options.require_paths = true;
    } else if (reader.flag("--help") || reader.flag("-h")) {
      out << kUsage;
      return kExitOk;
    } else if (file.empty()) {
      file = reader.positional();
    } else {
      reader.fail("unexpected argument '" + reader.peek() + "'");
    }
  }
  if (reader.error().empty() && file.empty()) reader.fail("missing FILE");
  if (!reader.error().empty()) {
    err << "torl config check: " << reader.error() << "\n" << kUsage;
    return kExitUsage;
  }

  const config::LoadResult result = config::load_config(file, options);
  for (const auto& warning : result.warnings) err << "warning: " << warning.to_string() << "\n";
  if (!result.config) {
    for (const auto& problem : result.errors) err << problem.to_string() << "\n";
    err << result.errors.size() << " problem" << (result.errors.size() == 1 ? "" : "s") << " in "
        << file << "\n";
    return kExitUsage;
  }
  out << "# resolved from " << file;
  for (const auto& text : options.overrides) out << " --set " << text;
  out << "\n" << config::to_yaml(*result.config);
  return kExitOk;
}

}  // namespace torl::tools
