// Reading a HuggingFace tokenizer.json fast. nlohmann-json would spend most of the load time on the
// two big members, `model.vocab` (~150k entries) and `model.merges` (~150k pairs); this scanner
// reads those two directly and hands the small remainder of the document to nlohmann-json. Pure
// functions; safe from any thread. Internal to model/tokenizer.cpp.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/json.hpp"
#include "common/status.hpp"

namespace torl::model::detail {

struct TokenizerJsonParts {
  Json rest;  // the whole document with model.vocab replaced by {} and model.merges by []
  bool has_vocab = false;
  bool has_merges = false;
  std::vector<std::pair<std::string, int64_t>> vocab;  // in file order
  std::vector<std::pair<std::string, std::string>>
      merges;  // in rank order; both "a b" and ["a","b"]
};

// Splits `text` (a whole tokenizer.json). Errors start with `origin` and say what was malformed.
Expected<TokenizerJsonParts> read_tokenizer_json(std::string_view text, const std::string& origin);

}  // namespace torl::model::detail
