// RunRequest: one snippet and how to run it. The training pipeline hands over only `code` (through
// CodeRunner::submit(std::string, Done)); `torl sandbox serve` fills in the rest from a SandboxFusion
// request. Plain value type; every field but `code` is off when left at its default, and costs
// nothing then.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace torl::sandbox {

// What happens to a snippet that writes more than tool.max_output_bytes to stdout or stderr.
enum class OutputOverflow {
  kKill,         // it is killed and ends as kOutputLimit (the tool loop: a flood is the code's fault)
  kKeepRunning,  // the rest is read and dropped; it runs to its end and keeps its own exit status
};

struct RunRequest {
  std::string code;
  std::optional<std::string> stdin_text;  // the program's stdin; absent: /dev/null
  // Written into the working directory before the run: (relative path, base64 content). Paths have
  // passed is_safe_relative_path; content has passed is_base64.
  std::vector<std::pair<std::string, std::string>> files;
  std::vector<std::string> fetch_files;  // relative paths read back after the run (ExecutionResult::files)
  int timeout_ms = 0;  // wall-clock limit; 0 or above the runner's own limit: the runner's limit
  int memory_mb = 0;   // address-space limit; 0 or above the runner's own limit: the runner's limit
  // Run as `python FILE` does, from a file in the working directory (__file__ and sys.argv[0] are its
  // path, the folder is first on sys.path); otherwise as `python -c CODE` (sys.argv == ['-c']).
  bool as_file = false;
  OutputOverflow overflow = OutputOverflow::kKill;

  // Whether this asks for nothing but running `code` under the runner's own limits.
  bool only_code() const {
    return !stdin_text && files.empty() && fetch_files.empty() && timeout_ms == 0 && memory_mb == 0;
  }
};

// Whether `path` names a file inside the working directory: not empty, relative, no ".." component,
// no NUL, not ending in "/".
bool is_safe_relative_path(const std::string& path);

// Whether `text` is standard base64 (A-Z a-z 0-9 + /, '=' padding, length a multiple of 4; line
// breaks and spaces are ignored, as Python's base64.b64decode does).
bool is_base64(const std::string& text);

}  // namespace torl::sandbox
