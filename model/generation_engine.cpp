#include "model/generation_engine.hpp"

#include <algorithm>

namespace torl::model {

GenerationEngine::GenerationEngine(CausalLm& model, const Tokenizer& tokenizer)
    : model_(model), tokenizer_(tokenizer), slot_used_(static_cast<size_t>(model.max_slots()), false) {}

Status GenerationEngine::admit(GenerationRequest request) {
  if (sequences_.count(request.id)) return invalid_argument("request " + std::to_string(request.id) + " is already admitted");
  if (request.prompt.empty()) return invalid_argument("request " + std::to_string(request.id) + " has an empty prompt");
  if (static_cast<int64_t>(request.prompt.size()) >= model_.max_length()) {
    return invalid_argument("request " + std::to_string(request.id) + ": prompt of " + std::to_string(request.prompt.size()) +
                            " tokens does not fit a cache of " + std::to_string(model_.max_length()));
  }
  const auto free = std::find(slot_used_.begin(), slot_used_.end(), false);
  if (free == slot_used_.end()) return Status(StatusCode::kUnavailable, "no free sequence slot");
  *free = true;
  const int64_t slot = free - slot_used_.begin();
  model_.clear(slot);
  const int64_t id = request.id;
  const uint64_t seed = request.seed;
  std::vector<int64_t> prompt = request.prompt;
  StopMatcher matcher(request.stops);
  sequences_.emplace(id, Sequence{std::move(request), slot, {}, 0, std::move(prompt), false, true,
                                  std::move(matcher), SequenceRng(seed)});
  return Status();
}

Status GenerationEngine::resume(int64_t id, const std::vector<int64_t>& tokens, ResumeOptions options) {
  auto it = sequences_.find(id);
  if (it == sequences_.end()) return not_found("request " + std::to_string(id) + " is not admitted");
  Sequence& sequence = it->second;
  if (!sequence.stopped) return invalid_argument("request " + std::to_string(id) + " is still generating");
  // A stopped sequence's last sample is pending (not in the cache yet); earlier ones are in the cache.
  const size_t from_pending = options.drop > 0 && !sequence.pending.empty() ? 1 : 0;
  const auto cached = static_cast<int64_t>(sequence.cached.size()) - (options.drop - static_cast<int64_t>(from_pending));
  if (options.drop < 0 || options.drop > sequence.generated || cached < static_cast<int64_t>(sequence.request.prompt.size())) {
    return invalid_argument("request " + std::to_string(id) + ": cannot take back " + std::to_string(options.drop) +
                            " sampled tokens");
  }
  std::vector<int64_t> feed(sequence.pending.begin(), sequence.pending.end() - static_cast<std::ptrdiff_t>(from_pending));
  feed.insert(feed.end(), tokens.begin(), tokens.end());
  const int64_t keep = feed.empty() ? cached - 1 : cached;  // nothing to feed: the last kept token again
  if (keep + static_cast<int64_t>(feed.size()) + (feed.empty() ? 1 : 0) >= model_.max_length()) {
    return Status(StatusCode::kUnavailable, "request " + std::to_string(id) + ": appended tokens do not fit its cache");
  }
  if (feed.empty()) feed.push_back(sequence.cached[static_cast<size_t>(keep)]);
  if (keep != static_cast<int64_t>(sequence.cached.size())) {
    sequence.cached.resize(static_cast<size_t>(keep));
    model_.truncate(sequence.slot, keep);
  }
  sequence.generated -= options.drop;
  sequence.pending = std::move(feed);
  sequence.stopped = false;
  sequence.stop_strings = sequence.stop_strings && options.stop_strings;
  sequence.matcher.reset();  // only text generated from here on may stop it
  if (options.max_new_tokens >= 0) sequence.request.max_new_tokens = sequence.generated + options.max_new_tokens;
  return Status();
}

void GenerationEngine::release(int64_t id) {
  auto it = sequences_.find(id);
  if (it == sequences_.end()) return;
  slot_used_[static_cast<size_t>(it->second.slot)] = false;
  model_.clear(it->second.slot);
  sequences_.erase(it);
}

std::vector<GenerationUpdate> GenerationEngine::step() {
  // ---- one forward over every running sequence: its pending tokens go into its cache ----
  std::vector<Sequence*> batch;
  std::vector<int64_t> slots;
  std::vector<std::vector<int64_t>> tokens;
  for (auto& [id, sequence] : sequences_) {
    if (sequence.stopped || sequence.pending.empty()) continue;
    batch.push_back(&sequence);
    slots.push_back(sequence.slot);
    tokens.push_back(sequence.pending);
  }
  if (batch.empty()) return {};
  const torch::Tensor logits = model_.extend(slots, tokens);  // [B, V]

  // ---- sample every row at once, each with its own parameters and stream; then check stop rules ----
  std::vector<SamplingParams> params;
  std::vector<SequenceRng*> rngs;
  for (Sequence* sequence : batch) {
    params.push_back(sequence->request.sampling);
    rngs.push_back(&sequence->rng);
  }
  const Sampled sampled = sample_next(logits, params, rngs);
  std::vector<GenerationUpdate> updates;
  for (size_t b = 0; b < batch.size(); ++b) {
    Sequence& sequence = *batch[b];
    sequence.cached.insert(sequence.cached.end(), sequence.pending.begin(), sequence.pending.end());
    const int64_t token = sampled.tokens[b];
    ++sequence.generated;
    sequence.pending = {token};  // fed in the next step, or before the injected tokens on resume

    GenerationUpdate update{sequence.request.id, {token}, {sampled.logprobs[b]}};
    const auto& eos = sequence.request.eos_ids;
    if (std::find(eos.begin(), eos.end(), token) != eos.end()) {
      update.stop = StopReason::kEos;
    } else if (auto stop = sequence.matcher.append(tokenizer_.token_bytes(static_cast<int32_t>(token)));
               stop && sequence.stop_strings) {
      update.stop = StopReason::kStopString;
      update.stop_string = stop;
    } else if (sequence.generated >= sequence.request.max_new_tokens) {
      update.stop = StopReason::kLength;
    } else if (static_cast<int64_t>(sequence.cached.size()) + 1 >= model_.max_length()) {
      update.stop = StopReason::kCacheFull;
    }
    sequence.stopped = update.stop != StopReason::kNone;
    updates.push_back(std::move(update));
  }
  return updates;
}

int64_t GenerationEngine::free_slots() const {
  return std::count(slot_used_.begin(), slot_used_.end(), false);
}

int64_t GenerationEngine::running() const {
  return std::count_if(sequences_.begin(), sequences_.end(), [](const auto& entry) { return !entry.second.stopped; });
}

}  // namespace torl::model
