// Validation of a tokenizer.json's settings other than the vocabulary and merges: which normalizer,
// pre-tokenizer, post-processor, decoder and BPE options it uses. Anything the tokenizer does not
// implement is an error naming the field. Pure functions; internal to model/tokenizer.cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/json.hpp"
#include "common/status.hpp"
#include "model/tokenizer_split.hpp"

namespace torl::model::detail {

// Ids above this in a tokenizer.json are rejected (they would make the id tables huge).
inline constexpr int64_t kMaxId = 1 << 24;

struct TokenizerOptions {
  bool normalize_nfc = false;         // normalizer {"type": "NFC"}
  std::optional<SplitPattern> split;  // the pre-tokenizer's regex
  bool ignore_merges = false;  // model.ignore_merges: a piece found in the vocab is one token
};

// Checks `root` (tokenizer.json, parsed); errors start with `origin`, e.g.
//   tokenizer.json: model.type "Unigram" is not supported (only BPE)
Expected<TokenizerOptions> check_tokenizer_options(const Json& root, const std::string& origin);

}  // namespace torl::model::detail
