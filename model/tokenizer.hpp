// Tokenizer: text <-> token ids, identical to the HuggingFace `tokenizers` library for byte-level
// BPE tokenizer.json files (Qwen2 / Qwen2.5 / Qwen3, Llama 3, GPT-2 families), plus a plain
// byte-level tokenizer (256 byte ids, then named special tokens) for tiny models.
//
// Encoding follows the reference pipeline: added tokens (special or not) are matched in the raw
// text first, leftmost then longest; the text between them is NFC-normalized (when the file says
// so), split by the pre-tokenizer regex, mapped to bytes and merged by BPE rank. `encode` never
// adds BOS/EOS (the reference's add_special_tokens=false; Qwen's post-processor adds none anyway).
//
// A Tokenizer is immutable after loading; every const method may be called from any thread at once.
// The BPE cache inside is guarded by its own lock. Movable, not copyable.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"

namespace torl::model {

class Tokenizer {
 public:
  // Loads `path`, a tokenizer.json file or a folder that holds one. Fails when the file is missing
  // or malformed, or uses a feature this class does not implement; the message names the file and
  // the field, e.g. `tokenizer.json: model.type "Unigram" is not supported (only BPE)`.
  [[nodiscard]] static Expected<Tokenizer> load(const std::filesystem::path& path);

  // A byte-level tokenizer: ids 0..255 are the bytes, then `special_tokens` get ids 256, 257, ...
  // in order. Special tokens are matched in the text like added tokens; empty or duplicate names
  // are a bug (checked).
  static Tokenizer byte_level(std::vector<std::string> special_tokens);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // The ids of `text` (UTF-8; invalid bytes are encoded as their byte tokens).
  std::vector<int32_t> encode(std::string_view text) const;

  // The text of `ids`: the bytes of every token (an added token gives its content), read as UTF-8
  // with each maximal invalid subsequence replaced by U+FFFD. Ids outside the vocabulary are
  // skipped.
  std::string decode(std::span<const int32_t> ids) const;

  // The raw bytes token `id` stands for (possibly part of a UTF-8 character); empty for an id
  // outside the vocabulary. The generation engine matches stop strings on these bytes.
  std::string_view token_bytes(int32_t id) const;

  // The id of a token as it is written in tokenizer.json (byte-level form, e.g. "Ġthe", or an added
  // token's content such as "<|im_end|>"); nullopt when there is none.
  std::optional<int32_t> token_id(std::string_view token) const;

  // One more than the largest id (vocabulary and added tokens).
  int32_t vocab_size() const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

}  // namespace torl::model
