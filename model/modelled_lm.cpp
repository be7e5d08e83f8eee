#include "model/modelled_lm.hpp"

#include <chrono>
#include <cstdio>
#include <sstream>
#include <thread>

#include "common/check.hpp"

namespace torl::model {

Expected<ForwardCost> ForwardCost::parse(const std::string& text) {
  ForwardCost cost;
  char end = 0;
  if (std::sscanf(text.c_str(), "%lf,%lf,%lf%c", &cost.fixed_ms, &cost.per_token_ms, &cost.per_cached_ms, &end) != 3 ||
      !(cost.fixed_ms >= 0) || !(cost.per_token_ms >= 0) || !(cost.per_cached_ms >= 0)) {
    return invalid_argument("a forward's cost is FIXED,PER_TOKEN,PER_CACHED in milliseconds, each >= 0 (got '" + text +
                            "')");
  }
  return cost;
}

std::string ForwardCost::to_string() const {
  std::ostringstream text;
  text << fixed_ms << " ms + " << per_token_ms << " ms x new tokens + " << per_cached_ms << " ms x cached tokens";
  return text.str();
}

ModelledLm::ModelledLm(int64_t max_slots, int64_t max_length, int64_t vocabulary, ForwardCost cost)
    : max_length_(max_length), vocabulary_(vocabulary), cost_(cost), lengths_(static_cast<size_t>(max_slots), 0) {}

void ModelledLm::truncate(int64_t slot, int64_t length) {
  int64_t& held = lengths_[static_cast<size_t>(slot)];
  TORL_CHECK(length >= 0 && length <= held, "truncating slot " + std::to_string(slot) + " of " + std::to_string(held) +
                                                " tokens to " + std::to_string(length));
  held = length;
}

torch::Tensor ModelledLm::extend(const std::vector<int64_t>& slots, const std::vector<std::vector<int64_t>>& tokens) {
  TORL_CHECK(!slots.empty() && slots.size() == tokens.size(), "extend: one token list per slot");
  int64_t fresh = 0, cached = 0;
  for (size_t i = 0; i < slots.size(); ++i) {
    int64_t& length = lengths_[static_cast<size_t>(slots[i])];
    const auto n = static_cast<int64_t>(tokens[i].size());
    TORL_CHECK(n >= 1 && length + n <= max_length_, "extend: slot cache overflow");
    length += n;
    fresh += n;
    cached += length;
  }
  const double ms = cost_.ms(fresh, cached);
  const auto start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(ms));
  late_ms_ += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() - ms;
  ++forwards_;
  rows_ += static_cast<int64_t>(slots.size());
  new_tokens_ += fresh;
  modelled_ms_ += ms;
  return torch::zeros({static_cast<int64_t>(slots.size()), vocabulary_});
}

}  // namespace torl::model
