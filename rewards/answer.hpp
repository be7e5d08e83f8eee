// Finding the final answer in a model's response, and cleaning an answer string before comparison.
// Pure functions; any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace torl::rewards {

// The content of the last \boxed{...} (braces nested to any depth), `\boxed x` (one token), or
// \fbox{...} in `text`; nullopt when there is none (or the last one is not closed).
std::optional<std::string> extract_boxed(std::string_view text);

// extract_boxed, then, only with `use_fallbacks`, phrases such as "the answer is X" / "final answer: X"
// (the last one in the text). The paper uses no fallbacks.
std::optional<std::string> extract_answer(std::string_view text, bool use_fallbacks);

// What JSON, Python and copy-paste do to LaTeX, undone where no reader could mean otherwise:
// - control characters that were escapes ("\frac" read as form feed + "rac", "\times" as a tab +
//   "imes", "\beta", "\right", "\neq", "\approx", "\varphi") become the command again;
// - a doubled backslash before a command name ("\\frac") is one; when every backslash of the text
//   is doubled (escaped twice through JSON), all are halved, matrix rows ("\\\\") included;
// - backslashes at the end ("42\") go;
// - no-break, thin and zero-width spaces are spaces; the en dash is a minus.
// answers_equivalent and answer_from_text apply it; the rest of a response is left alone.
std::string repair_transport(std::string_view text);

// For `torl grade`: the last \boxed{} of `text` (repaired as above) if it has one, otherwise the
// whole text without outer $...$, $$...$$, \(...\) or \[...\] and surrounding whitespace.
std::string answer_from_text(std::string_view text);

// The answer string in a canonical LaTeX-ish form for comparison, without changing its mathematics
// (normalize.cpp lists every rule and its limits): every $, \( \), \[ \] removed; \left \right
// \big..., spacing commands and \displaystyle removed; \dfrac and \tfrac become \frac; \text{..},
// \textbf{..}, \mathrm{..}, \mbox{..}, \operatorname{..} become their content; trailing units (cm,
// meters, inches, degrees, dollars, ...) and degree marks removed; \$ removed; \% and "percent"
// become a single trailing "%"; a trailing period removed; a leading "VAR =" removed when the
// right-hand side names no other variable ("x = 5" -> "5", but "y = 2x + 1" stays); thousands
// separators in plain numbers removed; whitespace collapsed and trimmed. Idempotent.
std::string normalize_answer(std::string_view answer);

}  // namespace torl::rewards
