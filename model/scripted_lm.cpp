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
  torch::Tensor logits = inner_.extend(slots, tokens).to(torch::kFloat32).clone();  // [B, V]
  logits.fill_(-1e4f);
  for (size_t i = 0; i < slots.size(); ++i) {
    Cursor& cursor = cursors_[static_cast<size_t>(slots[i])];
    if (!cursor.script) {
      auto it = scripts_.find(tokens[i]);
      cursor.script = it == scripts_.end() ? &fallback_ : &it->second;
    }
    const int64_t next = cursor.next < cursor.script->size() ? (*cursor.script)[cursor.next] : eos_;
    ++cursor.next;
    logits[static_cast<int64_t>(i)][next] = 1e4f;
  }
  return logits;
}

}  // namespace torl::model
