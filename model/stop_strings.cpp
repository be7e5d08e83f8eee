#include "model/stop_strings.hpp"

#include <algorithm>

namespace torl::model {

StopMatcher::StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {
  stops_.erase(std::remove(stops_.begin(), stops_.end(), std::string()), stops_.end());
  for (const auto& stop : stops_) longest_ = std::max(longest_, stop.size());
}

std::optional<size_t> StopMatcher::append(std::string_view token_bytes) {
  if (stops_.empty()) return std::nullopt;
  // Only matches that end inside the new token are new: search the kept tail plus the token.
  const std::string window = tail_ + std::string(token_bytes);
  std::optional<size_t> found;
  size_t found_end = std::string::npos;
  for (size_t i = 0; i < stops_.size(); ++i) {
    const size_t at = window.find(stops_[i], tail_.size() + 1 > stops_[i].size() ? tail_.size() + 1 - stops_[i].size() : 0);
    if (at == std::string::npos) continue;
    const size_t end = at + stops_[i].size();
    if (end <= tail_.size()) continue;  // ended before this token (already reported)
    if (end < found_end) {
      found = i;
      found_end = end;
    }
  }
  const size_t keep = longest_ > 0 ? longest_ - 1 : 0;
  tail_ = window.size() > keep ? window.substr(window.size() - keep) : window;
  return found;
}

void StopMatcher::reset() { tail_.clear(); }

}  // namespace torl::model
