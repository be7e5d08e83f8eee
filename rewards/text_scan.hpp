// Small character-level helpers shared by answer extraction (answer.cpp) and normalisation
// (normalize.cpp). Internal to rewards/.
#pragma once

#include <cstddef>
#include <string_view>

namespace torl::rewards::detail {

inline constexpr std::size_t kNone = std::string_view::npos;

inline bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
inline bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
inline char to_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

inline bool equals_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (to_lower(a[i]) != to_lower(b[i])) return false;
  }
  return true;
}

inline std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// Digits at s[i..i+3) and no digit right after: the tail of a thousands group.
inline bool three_digit_group_at(std::string_view s, std::size_t i) {
  return i + 3 <= s.size() && is_digit(s[i]) && is_digit(s[i + 1]) && is_digit(s[i + 2]) &&
         (i + 3 == s.size() || !is_digit(s[i + 3]));
}

// Whether s contains an unescaped '$'.
inline bool has_unescaped_dollar(std::string_view s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
    } else if (s[i] == '$') {
      return true;
    }
  }
  return false;
}

// Whether `s` ends with the two-character command `command` ("\\)") whose backslash is not itself
// escaped: "\\\\)" is a line break and a parenthesis.
inline bool ends_with_command(std::string_view s, std::string_view command) {
  if (!s.ends_with(command)) return false;
  std::size_t backslashes = 0;
  for (std::size_t k = s.size() - 1; k > 0 && s[k - 1] == '\\'; --k) ++backslashes;
  return backslashes % 2 == 1;
}

// `s` without surrounding whitespace and outer $$..$$, $..$, \(..\), \[..\] (repeatedly).
inline std::string_view strip_outer_delimiters(std::string_view s) {
  while (true) {
    s = trim(s);
    std::string_view inner;
    if (s.size() >= 4 && s.starts_with("$$") && s.ends_with("$$")) {
      inner = s.substr(2, s.size() - 4);
    } else if (s.size() >= 2 && s.front() == '$' && s.back() == '$' &&
               !(s.size() >= 3 && s[s.size() - 2] == '\\')) {
      inner = s.substr(1, s.size() - 2);
    } else if (s.size() >= 4 && s.starts_with("\\(") && ends_with_command(s, "\\)")) {
      return trim(s.substr(2, s.size() - 4));
    } else if (s.size() >= 4 && s.starts_with("\\[") && ends_with_command(s, "\\]")) {
      return trim(s.substr(2, s.size() - 4));
    } else {
      return s;
    }
    // "$a$ and $b$" starts and ends with '$' but is not one math span.
    if (has_unescaped_dollar(inner)) return s;
    s = inner;
  }
}


}  // namespace torl::rewards::detail
