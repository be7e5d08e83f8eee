// The pre-tokenizer: splits normalized text into the pieces BPE encodes one at a time. Each
// supported HuggingFace Split regex is implemented by hand with Oniguruma's semantics (the engine
// the reference Rust library uses), which std::regex neither has nor matches in speed. Pure
// functions; safe from any thread. Internal to model/tokenizer.cpp.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

namespace torl::model::detail {

enum class SplitPattern {
  // Qwen2 / Qwen2.5 / Qwen3:
  // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|
  // ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  kQwen2,
  // Llama 3: as kQwen2 with \p{N}{1,3} for \p{N}.
  kLlama3,
  // GPT-2 (ByteLevel use_regex): 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+|
  // ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  kGpt2,
};

// The pattern whose regex source is exactly `regex`, if it is one we implement.
std::optional<SplitPattern> find_split_pattern(std::string_view regex);

// Appends the pieces of `text` to `out` in order; together they cover `text` exactly (the
// "Isolated" behaviour: every match and every gap between matches is a piece). Invalid UTF-8 bytes
// count as characters outside L, N and \s.
void split_pretokens(SplitPattern pattern, std::string_view text,
                     std::vector<std::string_view>& out);

}  // namespace torl::model::detail
