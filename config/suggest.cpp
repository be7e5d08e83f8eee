#include "config/suggest.hpp"

#include <algorithm>
#include <limits>

namespace torl::config {
namespace {

std::string_view last_part(std::string_view key) {
  const auto dot = key.rfind('.');
  return dot == std::string_view::npos ? key : key.substr(dot + 1);
}

// Typos allowed for a word of this length: 1 for words of up to 3 letters, else 2 or a third.
size_t tolerance(std::string_view word) {
  return word.size() <= 3 ? 1 : std::max<size_t>(2, word.size() / 3);
}

}  // namespace

size_t edit_distance(std::string_view a, std::string_view b) {
  // Optimal string alignment distance over three rolling rows.
  std::vector<size_t> before(b.size() + 1), previous(b.size() + 1), current(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) previous[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    current[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      current[j] = std::min({previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        current[j] = std::min(current[j], before[j - 2] + 1);
      }
    }
    std::swap(before, previous);
    std::swap(previous, current);
  }
  return previous[b.size()];
}

std::optional<std::string> suggest_word(std::string_view word, const std::vector<std::string>& words) {
  std::optional<std::string> best;
  size_t best_distance = std::numeric_limits<size_t>::max();
  for (const auto& candidate : words) {
    const size_t distance = edit_distance(word, candidate);
    if (distance < best_distance) {
      best_distance = distance;
      best = candidate;
    }
  }
  if (best && best_distance <= tolerance(word)) return best;
  return std::nullopt;
}

std::optional<std::string> suggest_key(const std::string& key, const std::vector<std::string>& known) {
  // The same name in other sections first ("tool.temperature": rollout.temperature or eval.temperature),
  // then a near spelling of the whole key, then of its last part.
  const std::string_view name = last_part(key);
  std::string same_name;
  for (const auto& candidate : known) {
    if (last_part(candidate) == name) same_name += (same_name.empty() ? "" : " or ") + candidate;
  }
  if (!same_name.empty()) return same_name;
  if (auto near = suggest_word(key, known)) return near;

  std::optional<std::string> best;
  size_t best_distance = std::numeric_limits<size_t>::max();
  for (const auto& candidate : known) {
    const size_t distance = edit_distance(name, last_part(candidate));
    if (distance < best_distance) {
      best_distance = distance;
      best = candidate;
    }
  }
  if (best && best_distance <= tolerance(name)) return best;
  return std::nullopt;
}

}  // namespace torl::config
