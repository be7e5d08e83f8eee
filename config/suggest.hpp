// "Did you mean" suggestions for misspelt config keys and enum values. Pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace torl::config {

// Edit distance with adjacent transpositions counted as one edit ("mxa" -> "max" is 1).
size_t edit_distance(std::string_view a, std::string_view b);

// The closest of `words` to `word`, when close enough to be a likely typo.
std::optional<std::string> suggest_word(std::string_view word, const std::vector<std::string>& words);

// The known dotted key(s) a user most likely meant by `key`: the same name in other sections
// ("tool.temperature" -> "rollout.temperature or eval.temperature"), else a near spelling of the
// whole key, else a near spelling of the last part in any section.
std::optional<std::string> suggest_key(const std::string& key, const std::vector<std::string>& known);

}  // namespace torl::config
