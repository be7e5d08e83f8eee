#include "model/scripted_lm.hpp"

namespace torl::model {

ScriptedLm::ScriptedLm(CausalLm& inner, std::map<std::vector<int64_t>, std::vector<int64_t>> scripts,
                       std::vector<int64_t> fallback, int64_t eos)
    : inner_(inner), scripts_(std::move(scripts)), fallback_(std::move(fallback)), eos_(eos),
      cursors_(static_cast<size_t>(inner.max_slots())) {}

void ScriptedLm::clear(int64_t slot) {
  cursors_[static_cast<size_t>(slot)] = Cursor{};
  inner_.clear(slot);
}

torch::Tensor ScriptedLm::extend(const std::vector<int64_t>& slots, const std::vector<std::vector<int64_t>>& tokens) {
  const torch::Tensor computed = inner_.extend(slots, tokens);  // [B, V]
  torch::Tensor logits = torch::full(computed.sizes(), -1e4f, torch::kFloat32);  // on the host, written in place
  auto at = logits.accessor<float, 2>();
  for (size_t i = 0; i < slots.size(); ++i) {
    Cursor& cursor = cursors_[static_cast<size_t>(slots[i])];
    if (!cursor.script) {
      auto it = scripts_.find(tokens[i]);
      cursor.script = it == scripts_.end() ? &fallback_ : &it->second;
    }
    const int64_t next = cursor.next < cursor.script->size() ? (*cursor.script)[cursor.next] : eos_;
    ++cursor.next;
    at[static_cast<int64_t>(i)][next] = 1e4f;
  }
  return logits.to(computed.device());
}

}  // namespace torl::model
