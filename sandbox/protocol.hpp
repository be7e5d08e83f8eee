// The TIR tool protocol (DESIGN.md §3): which code a model's text asks to run, and the text the model
// sees back. Pure functions on strings, with no state: any thread may call them at any time.
//
// Reference: ToRL's rollout (verl/workers/rollout/vllm_rollout/vllm_rollout_spmd.py) copies
// extract_program() from Qwen-Agent (qwen_agent/agents/tir_agent.py) and post-processes the sandbox
// result in code_interpreter_batch_call() + postproc_observation(). Differences are noted below.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "sandbox/execution_result.hpp"

namespace torl::sandbox {

// Generation stops at this string; the tool's answer follows it.
inline constexpr std::string_view kStopString = "```output";

// What the model is shown when the sandbox, not the code, failed (kSandboxError: queue full, worker
// died, no answer in time): ToRL's text for a failed sandbox request. The real cause is logged and
// kept in the trajectory's tool call.
inline constexpr std::string_view kSandboxFaultObservation = "UnknownError";

// ToRL's text for an observation that is empty after stripping (whatever the real cause was).
inline constexpr std::string_view kEmptyObservation =
    "timeout_decorator.timeout_decorator.TimeoutError: 'Timed Out'";

// What tool.feedback: none shows for a failed execution (status not ok).
inline constexpr std::string_view kMaskedFailureObservation = "Execution failed.";

// Observations of kMaxObservationChars code points or more keep their first and last
// kKeptObservationChars, joined by "...".
inline constexpr std::size_t kMaxObservationChars = 256;
inline constexpr std::size_t kKeptObservationChars = 128;

// The code a tool call asks to run. `text` is what the model generated since the previous tool call,
// normally ending with kStopString (removed first when present, as vLLM never shows ToRL the stop
// string). Lines are split at '\n' only, so "\r\n" text works: fence tests look at line starts.
//
// Scanning lines top to bottom, as ToRL does: a line starting with "```python" opens a block
// (discarding any earlier block); a later line starting with "```" closes it. Returns the text
// between the opening and closing fence lines (each code line with its '\n', '\r' kept), of the last
// opened block. Returns nullopt, a void call with nothing to execute, when no block was opened, when
// the last opened block is still open at the end (even if an earlier block was closed: ToRL runs
// nothing then either), or when that block is empty.
//
// Deliberate difference from ToRL: ToRL also opens a block on a line that *ends* with "```python"
// ("Let me check: ```python"); torl requires the fence at the start of the line (DESIGN.md §3).
std::optional<std::string> extract_code(std::string_view text);

// The observation text shown to the model for `result`, always valid UTF-8. Raw output bytes are
// decoded first, each maximal invalid UTF-8 subsequence becoming U+FFFD (Python's
// decode(errors="replace")); "characters" are code points, "strip" is Python's str.strip().
//
// kTorl, ToRL's rules in order: take stdout if exit_code is 0 or stdout is non-empty, else stderr;
//   if it contains "Error", keep only the last line of the stripped text; if empty after stripping,
//   use kEmptyObservation; strip; shorten to 128 + "..." + 128 characters when it has 256 or more.
// kFull: stdout, then stderr, then for a status other than ok a line "[status: NAME]" (with
//   ", exit code N" for error and ", signal N" for killed), each part starting on a new line;
//   stripped and shortened like kTorl. Empty output of an ok run stays empty.
// kNone (error-message ablation): an ok run is shown as in kTorl; any other status shows
//   kMaskedFailureObservation.
// A kSandboxError result is formatted like any other (its stderr says what went wrong in the
// sandbox); the tool loop shows kSandboxFaultObservation instead.
std::string format_observation(const ExecutionResult& result, config::ToolFeedback mode);

// The tool text appended after the model's kStopString: "\n" + observation + "\n```\n".
std::string observation_suffix(std::string_view observation);

}  // namespace torl::sandbox
