// Loading a Config from YAML: includes, `--set` overrides, and one validation pass that reports every
// problem at once, each with where it comes from and the dotted key:
//   runs/a.yaml:7: tool.max_cals: unknown key (did you mean tool.max_calls?)
//   runs/a.yaml:9: rollout.top_p: must be > 0 and <= 1 (got 1.5)
//   --set tool.workers=two: tool.workers: must be an integer (got 'two')
//
// File format: a YAML mapping of sections (config/config.hpp). A file may start with
// `include: base.yaml` (or a list of files), resolved relative to the including file; the including
// file's keys win, maps merge key by key, and lists are replaced whole. Relative paths inside the
// config are relative to the working directory.
//
// Pure functions of the files they read; safe to call from any thread.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/status.hpp"
#include "config/config.hpp"

namespace torl::config {

// Where a value came from: a file and 1-based line (0 = the file as a whole), or a `--set` flag.
struct Origin {
  std::string file;  // the file, or "--set KEY=VALUE" for an override
  int line = 0;
  bool is_override = false;

  std::string where() const { return line > 0 ? file + ":" + std::to_string(line) : file; }
};

// One problem found while loading.
struct Problem {
  Origin origin;
  std::string key;      // dotted key, e.g. "tool.max_calls"; empty for whole-file problems
  std::string message;  // what is wrong and, where possible, what to do

  std::string where() const { return origin.where(); }
  std::string to_string() const;  // "FILE:LINE: KEY: MESSAGE"
};

struct LoadOptions {
  std::vector<std::string> overrides;  // "a.b=c", applied after all files, in order
  // Missing input paths (model.path, data files, ...) are errors when true, warnings when false:
  // `torl config check` may run on a machine that does not hold the weights, `torl train` may not.
  bool require_paths = true;
  // For commands that use one section (`torl sandbox` uses `tool`): required keys and paths are
  // checked only in that section. Unknown keys and bad values are errors everywhere.
  std::string only_section;
};

struct LoadResult {
  std::optional<Config> config;   // set when there are no errors
  std::vector<Problem> errors;    // in file order, by line; overrides last
  std::vector<Problem> warnings;  // likewise

  // Ok, or an invalid-argument Status whose message lists every error, one per line.
  Status status() const;
};

// `file` may be empty: the defaults, then the overrides.
LoadResult load_config(const std::filesystem::path& file, const LoadOptions& options = {});

// Convenience for commands: the Config, or the Status listing every error. Warnings are logged.
Expected<Config> load_config_or_error(const std::filesystem::path& file,
                                      const LoadOptions& options = {});

// The config as YAML that load_config reads back to an equal Config: every section and key, in
// declaration order, strings quoted.
std::string to_yaml(const Config& config);

// Every dotted key the schema knows ("run.name", ..., "tool.sandbox_fusion.url"), in order.
std::vector<std::string> known_keys();

}  // namespace torl::config
