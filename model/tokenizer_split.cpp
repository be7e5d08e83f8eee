#include "model/tokenizer_split.hpp"

#include <cstdint>

#include "model/unicode.hpp"

namespace torl::model::detail {
namespace {

constexpr std::string_view kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

enum CharClass : uint8_t { kOther, kLetter, kNumber, kSpace };

// The text decoded once: code point, class and byte offset per character (offsets has n+1 entries).
struct Chars {
  std::vector<char32_t> cps;
  std::vector<uint8_t> classes;
  std::vector<uint32_t> offsets;

  explicit Chars(std::string_view text) {
    cps.reserve(text.size());
    classes.reserve(text.size());
    offsets.reserve(text.size() + 1);
    size_t pos = 0;
    while (pos < text.size()) {
      offsets.push_back(static_cast<uint32_t>(pos));
      const char32_t cp = unicode::decode_utf8(text, pos);
      cps.push_back(cp);
      classes.push_back(classify(cp));
    }
    offsets.push_back(static_cast<uint32_t>(text.size()));
  }

  static uint8_t classify(char32_t cp) {
    if (cp < 0x80) {
      if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') return kLetter;
      if (cp >= '0' && cp <= '9') return kNumber;
      if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D)) return kSpace;
      return kOther;
    }
    if (unicode::is_letter(cp)) return kLetter;
    if (unicode::is_number(cp)) return kNumber;
    if (unicode::is_whitespace(cp)) return kSpace;
    return kOther;
  }

  size_t size() const { return cps.size(); }
  // End of the run of class `c` starting at `i`.
  size_t run_end(size_t i, uint8_t c) const {
    while (i < size() && classes[i] == c) ++i;
    return i;
  }
};

bool is_newline(char32_t cp) { return cp == '\r' || cp == '\n'; }

// Length of a contraction ('s 't 're 've 'm 'll 'd) at `i`, or 0. `ignore_case` follows (?i:...)
// in Oniguruma, where U+017F (long s) case-folds to 's'.
size_t contraction_length(const Chars& c, size_t i, bool ignore_case) {
  if (c.cps[i] != '\'' || i + 1 >= c.size()) return 0;
  const auto fold = [ignore_case](char32_t cp) -> char32_t {
    if (!ignore_case) return cp;
    if (cp >= 'A' && cp <= 'Z') return cp + 32;
    if (cp == 0x17F) return 's';
    return cp;
  };
  const char32_t a = fold(c.cps[i + 1]);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (i + 2 >= c.size()) return 0;
  const char32_t b = fold(c.cps[i + 2]);
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

// The whitespace alternatives shared by all patterns: \s+(?!\S)|\s+ (and, for kQwen2/kLlama3,
// \s*[\r\n]+ before them). `i` is at a whitespace character.
size_t whitespace_end(const Chars& c, size_t i, bool newline_alternative) {
  const size_t run = c.run_end(i, kSpace);
  if (newline_alternative) {
    // \s*[\r\n]+ backtracks to the last newline of the run.
    for (size_t k = run; k > i; --k) {
      if (is_newline(c.cps[k - 1])) return k;
    }
  }
  if (run == c.size() || run - i == 1) return run;  // \s+(?!\S) at the end, or \s+
  return run - 1;                                   // leave the last space for the next piece
}

// End of the match starting at `i` for the Qwen2/Llama3 pattern.
size_t qwen2_match_end(const Chars& c, size_t i, size_t max_digits) {
  if (const size_t n = contraction_length(c, i, true)) return i + n;
  const uint8_t cls = c.classes[i];
  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (cls == kLetter) return c.run_end(i, kLetter);
  if (cls != kNumber && !is_newline(c.cps[i]) && i + 1 < c.size() && c.classes[i + 1] == kLetter) {
    return c.run_end(i + 1, kLetter);
  }
  // \p{N} or \p{N}{1,3}
  if (cls == kNumber) {
    size_t end = i + 1;
    while (end < c.size() && end - i < max_digits && c.classes[end] == kNumber) ++end;
    return end;
  }
  // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
  size_t start = kOther == cls ? i : c.size();
  if (c.cps[i] == ' ' && i + 1 < c.size() && c.classes[i + 1] == kOther) start = i + 1;
  if (start < c.size()) {
    size_t end = c.run_end(start, kOther);
    while (end < c.size() && is_newline(c.cps[end])) ++end;
    return end;
  }
  return whitespace_end(c, i, true);
}

size_t gpt2_match_end(const Chars& c, size_t i) {
  if (const size_t n = contraction_length(c, i, false)) return i + n;
  const uint8_t cls = c.classes[i];
  if (c.cps[i] == ' ' && i + 1 < c.size() && c.classes[i + 1] != kSpace) {
    return c.run_end(i + 1, c.classes[i + 1]);  // ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+'
  }
  if (cls != kSpace) return c.run_end(i, cls);
  return whitespace_end(c, i, false);
}

}  // namespace

std::optional<SplitPattern> find_split_pattern(std::string_view regex) {
  if (regex == kQwen2Regex) return SplitPattern::kQwen2;
  if (regex == kLlama3Regex) return SplitPattern::kLlama3;
  if (regex == kGpt2Regex) return SplitPattern::kGpt2;
  return std::nullopt;
}

void split_pretokens(SplitPattern pattern, std::string_view text,
                     std::vector<std::string_view>& out) {
  if (text.empty()) return;
  const Chars chars(text);
  size_t i = 0;
  while (i < chars.size()) {
    size_t end = 0;
    switch (pattern) {
      case SplitPattern::kQwen2:
        end = qwen2_match_end(chars, i, 1);
        break;
      case SplitPattern::kLlama3:
        end = qwen2_match_end(chars, i, 3);
        break;
      case SplitPattern::kGpt2:
        end = gpt2_match_end(chars, i);
        break;
    }
    out.push_back(text.substr(chars.offsets[i], chars.offsets[end] - chars.offsets[i]));
    i = end;
  }
}

}  // namespace torl::model::detail
