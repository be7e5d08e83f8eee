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

// For `torl grade`: the last \boxed{} of `text` if it has one, otherwise the whole text without
// outer $...$, $$...$$, \(...\) or \[...\] and surrounding whitespace.
std::string answer_from_text(std::string_view text);

// The answer string in a canonical LaTeX-ish form for comparison, without changing its mathematics:
// outer $ and \( \) removed; \left \right \big..., spacing commands (\! \, \; \: \quad \qquad "\ "),
// \displaystyle removed; \dfrac and \tfrac become \frac; \text{..}, \textbf{..}, \mathrm{..},
// \mbox{..}, \operatorname{..} become their content; trailing units (cm, meters, inches, degrees,
// dollars, ...) and degree marks (^\circ, ^{\circ}, \degree, °) removed; \$ and "dollars" removed;
// \% and % kept as a single trailing "%"; a trailing period removed; a leading "x =" (one variable,
// as in "x = 5" or "k=3") removed; thousands separators in plain numbers ("1,000,000", "1{,}000")
// removed; whitespace collapsed to single spaces and trimmed.
std::string normalize_answer(std::string_view answer);

}  // namespace torl::rewards
