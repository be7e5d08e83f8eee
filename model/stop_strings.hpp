// StopMatcher: finds stop strings (such as "```output") in generated text as it grows token by
// token, also when a stop string straddles tokens or a token holds more than the stop string. Works
// on raw bytes, so a token that ends inside a UTF-8 character is no problem. One per sequence; not
// thread-safe (the generation engine owns one per slot).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace torl::model {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops = {});

  // Appends the bytes of one generated token. Returns the index of the stop string that now occurs
  // for the first time in the text since the last reset(), or nullopt. When several complete in
  // the same token, the one that ends first wins.
  std::optional<size_t> append(std::string_view token_bytes);

  // Forgets the text so far (after a tool call's output was injected: only new text may stop).
  void reset();

  const std::vector<std::string>& stops() const { return stops_; }

 private:
  std::vector<std::string> stops_;
  std::string tail_;        // the last (longest stop - 1) bytes before the current token
  size_t longest_ = 0;
};

}  // namespace torl::model
