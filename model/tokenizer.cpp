#include "model/tokenizer.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <queue>
#include <shared_mutex>
#include <unordered_map>

#include "common/json.hpp"
#include "model/tokenizer_json.hpp"
#include "model/tokenizer_options.hpp"
#include "model/tokenizer_split.hpp"
#include "model/unicode.hpp"

namespace torl::model {
namespace {

using detail::SplitPattern;

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <class V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

// Pieces longer than this are encoded without the cache (long runs are rare and would bloat it).
constexpr size_t kMaxCachedPieceBytes = 64;
// Pieces with more bytes than this are merged with a heap instead of by scanning all pairs.
constexpr size_t kMaxScanMergeSymbols = 48;
// The cache stops growing at this many entries; later pieces are simply not cached.
constexpr size_t kCacheCapacity = 100000;
using detail::kMaxId;

// GPT-2's bytes_to_unicode: each byte as the printable character BPE vocabularies spell it with.
struct ByteChars {
  std::array<char32_t, 256> byte_to_char{};
  std::array<int16_t, 324> char_to_byte{};  // -1 for characters that stand for no byte

  ByteChars() {
    char_to_byte.fill(-1);
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
      byte_to_char[b] = printable ? static_cast<char32_t>(b) : next++;
      char_to_byte[byte_to_char[b]] = static_cast<int16_t>(b);
    }
  }
};

const ByteChars& byte_chars() {
  static const ByteChars table;
  return table;
}

// The bytes a token stands for under the ByteLevel decoder: each character mapped back to its byte,
// or, when some character stands for no byte, the token's own UTF-8 (as the reference does).
std::string byte_level_to_bytes(std::string_view token) {
  const ByteChars& chars = byte_chars();
  std::string out;
  out.reserve(token.size());
  size_t pos = 0;
  while (pos < token.size()) {
    const char32_t cp = unicode::decode_utf8(token, pos);
    if (cp >= chars.char_to_byte.size() || chars.char_to_byte[cp] < 0) return std::string(token);
    out.push_back(static_cast<char>(chars.char_to_byte[cp]));
  }
  return out;
}

// (left id, right id) -> (rank, merged id), open addressing. Built once, then read-only.
class MergeTable {
 public:
  struct Entry {
    uint64_t key = kEmpty;
    int32_t rank = 0;
    int32_t merged = 0;
  };

  void reserve(size_t count) {
    size_t capacity = 16;
    while (capacity < count * 2) capacity *= 2;
    entries_.assign(capacity, Entry{});
    mask_ = capacity - 1;
  }

  // Inserts or overwrites (a later duplicate merge wins, as in the reference).
  void insert(int32_t left, int32_t right, int32_t rank, int32_t merged) {
    const uint64_t key = make_key(left, right);
    for (size_t i = slot(key);; i = (i + 1) & mask_) {
      if (entries_[i].key == kEmpty || entries_[i].key == key) {
        entries_[i] = Entry{key, rank, merged};
        return;
      }
    }
  }

  const Entry* find(int32_t left, int32_t right) const {
    if (entries_.empty()) return nullptr;
    const uint64_t key = make_key(left, right);
    for (size_t i = slot(key);; i = (i + 1) & mask_) {
      if (entries_[i].key == key) return &entries_[i];
      if (entries_[i].key == kEmpty) return nullptr;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  static uint64_t make_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }
  size_t slot(uint64_t key) const { return ((key * 0x9E3779B97F4A7C15ull) >> 20) & mask_; }

  std::vector<Entry> entries_;
  size_t mask_ = 0;
};

struct AddedToken {
  std::string content;
  int32_t id;
};

Expected<std::string> read_file(const std::filesystem::path& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return not_found("cannot open '" + path.string() + "'");
  std::string text;
  char buffer[1 << 16];
  size_t got = 0;
  while ((got = std::fread(buffer, 1, sizeof buffer, file)) > 0) text.append(buffer, got);
  const bool failed = std::ferror(file) != 0;
  std::fclose(file);
  if (failed) return io_error("reading '" + path.string() + "' failed");
  return text;
}

}  // namespace

struct Tokenizer::Impl {
  // ---- fixed after construction ----
  bool normalize_nfc = false;
  std::optional<SplitPattern>
      split;  // nullopt: the whole segment is one piece (byte-level tokenizer)
  bool ignore_merges = false;
  bool byte_only = false;               // Tokenizer::byte_level: every byte is its own token
  std::array<int32_t, 256> byte_ids{};  // id of each single-byte token; -1 when missing
  MergeTable merges;
  StringMap<int32_t> vocab;  // model vocabulary, byte-level spelling
  StringMap<int32_t> added_by_content;
  std::vector<AddedToken> added;                               // longest first
  std::array<std::vector<uint32_t>, 256> added_by_first_byte;  // indices into `added`
  std::vector<std::string> id_bytes;  // the bytes each id decodes to; empty for unused ids

  // ---- the BPE cache: piece bytes -> ids, guarded by cache_mutex ----
  mutable std::shared_mutex cache_mutex;
  mutable StringMap<std::vector<int32_t>> cache;

  void index_added_tokens() {
    std::stable_sort(added.begin(), added.end(), [](const AddedToken& a, const AddedToken& b) {
      return a.content.size() > b.content.size();
    });
    for (uint32_t i = 0; i < added.size(); ++i) {
      added_by_first_byte[static_cast<uint8_t>(added[i].content[0])].push_back(i);
      added_by_content[added[i].content] = added[i].id;
    }
  }

  // The leftmost added token at or after `from`, longest first: {position, index}, or {npos, 0}.
  std::pair<size_t, uint32_t> find_added(std::string_view text, size_t from) const {
    if (added.empty()) return {std::string_view::npos, 0};
    for (size_t i = from; i < text.size(); ++i) {
      const auto& candidates = added_by_first_byte[static_cast<uint8_t>(text[i])];
      for (const uint32_t index : candidates) {
        const std::string& content = added[index].content;
        if (text.compare(i, content.size(), content) == 0) return {i, index};
      }
    }
    return {std::string_view::npos, 0};
  }

  void encode_segment(std::string_view segment, std::vector<int32_t>& out,
                      std::vector<std::string_view>& pieces) const {
    if (segment.empty()) return;
    std::string normalized;
    if (normalize_nfc && !unicode::is_nfc_quick(segment)) {
      normalized = unicode::to_nfc(segment);
      segment = normalized;
    }
    if (byte_only || !split) {
      for (const char c : segment) {
        const int32_t id = byte_ids[static_cast<uint8_t>(c)];
        if (id >= 0) out.push_back(id);
      }
      return;
    }
    pieces.clear();
    detail::split_pretokens(*split, segment, pieces);
    for (const std::string_view piece : pieces) encode_piece(piece, out);
  }

  void encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
    if (piece.size() == 1) {
      const int32_t id = byte_ids[static_cast<uint8_t>(piece[0])];
      if (id >= 0) out.push_back(id);
      return;
    }
    const bool cacheable = piece.size() <= kMaxCachedPieceBytes;
    if (cacheable) {
      std::shared_lock lock(cache_mutex);
      const auto it = cache.find(piece);
      if (it != cache.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        return;
      }
    }
    const size_t first = out.size();
    merge_piece(piece, out);
    if (cacheable) {
      std::unique_lock lock(cache_mutex);
      if (cache.size() < kCacheCapacity) {
        cache.try_emplace(std::string(piece), out.begin() + first, out.end());
      }
    }
  }

  // BPE: start from the byte tokens and repeatedly apply the lowest-ranked merge (leftmost on
  // ties).
  void merge_piece(std::string_view piece, std::vector<int32_t>& out) const {
    if (ignore_merges) {
      std::string spelled;
      for (const char c : piece) {
        unicode::append_utf8(spelled, byte_chars().byte_to_char[static_cast<uint8_t>(c)]);
      }
      const auto it = vocab.find(spelled);
      if (it != vocab.end()) {
        out.push_back(it->second);
        return;
      }
    }
    std::vector<int32_t> symbols;
    symbols.reserve(piece.size());
    for (const char c : piece) {
      const int32_t id = byte_ids[static_cast<uint8_t>(c)];
      if (id >= 0) symbols.push_back(id);
    }
    if (symbols.size() > kMaxScanMergeSymbols) {
      merge_with_heap(symbols, out);
    } else {
      merge_by_scan(symbols, out);
    }
  }

  // For short pieces: scan all pairs for the best merge each time (O(n^2), but no allocation
  // churn).
  void merge_by_scan(std::vector<int32_t>& symbols, std::vector<int32_t>& out) const {
    constexpr int32_t kNoMerge = INT32_MAX;
    // ranks[i]: rank of merging symbols[i] and symbols[i + 1].
    std::vector<int32_t> ranks(symbols.empty() ? 0 : symbols.size() - 1);
    const auto rank_at = [&](size_t i) {
      const MergeTable::Entry* entry = merges.find(symbols[i], symbols[i + 1]);
      return entry == nullptr ? kNoMerge : entry->rank;
    };
    for (size_t i = 0; i < ranks.size(); ++i) ranks[i] = rank_at(i);
    while (!ranks.empty()) {
      const auto best = std::min_element(ranks.begin(), ranks.end());
      if (*best == kNoMerge) break;
      const size_t i = best - ranks.begin();
      symbols[i] = merges.find(symbols[i], symbols[i + 1])->merged;
      symbols.erase(symbols.begin() + i + 1);
      ranks.erase(ranks.begin() + i);
      if (i > 0) ranks[i - 1] = rank_at(i - 1);
      if (i < ranks.size()) ranks[i] = rank_at(i);
    }
    out.insert(out.end(), symbols.begin(), symbols.end());
  }

  // For long pieces: a min-heap of (rank, position) over a linked list of symbols (O(n log n)).
  // Entries made stale by an earlier merge are recognised and skipped when popped.
  void merge_with_heap(std::vector<int32_t>& symbols, std::vector<int32_t>& out) const {
    const int32_t n = static_cast<int32_t>(symbols.size());
    std::vector<int32_t> next(n), prev(n);
    for (int32_t i = 0; i < n; ++i) {
      next[i] = i + 1 < n ? i + 1 : -1;
      prev[i] = i - 1;
    }
    using Candidate = std::pair<int32_t, int32_t>;  // (rank, left position)
    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
    const auto push = [&](int32_t left) {
      if (left < 0 || next[left] < 0) return;
      const MergeTable::Entry* entry = merges.find(symbols[left], symbols[next[left]]);
      if (entry != nullptr) heap.emplace(entry->rank, left);
    };
    for (int32_t i = 0; i + 1 < n; ++i) push(i);
    while (!heap.empty()) {
      const auto [rank, left] = heap.top();
      heap.pop();
      if (symbols[left] < 0 || next[left] < 0) continue;  // merged away
      const int32_t right = next[left];
      const MergeTable::Entry* entry = merges.find(symbols[left], symbols[right]);
      if (entry == nullptr || entry->rank != rank) continue;  // the pair changed since
      symbols[left] = entry->merged;
      symbols[right] = -1;
      next[left] = next[right];
      if (next[right] >= 0) prev[next[right]] = left;
      push(prev[left]);
      push(left);
    }
    for (int32_t i = 0; i >= 0; i = next[i]) out.push_back(symbols[i]);
  }
};

// ---- construction and loading ----

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Expected<Tokenizer> Tokenizer::load(const std::filesystem::path& path) {
  std::error_code ec;
  const std::filesystem::path file =
      std::filesystem::is_directory(path, ec) ? path / "tokenizer.json" : path;
  const std::string origin = file.string();
  Expected<std::string> text = read_file(file);
  if (!text.ok()) return text.status().with_context("loading tokenizer");
  Expected<detail::TokenizerJsonParts> parts = detail::read_tokenizer_json(*text, origin);
  if (!parts.ok()) return parts.status();
  if (!parts->rest.is_object()) return invalid_argument(origin + ": expected a JSON object");

  Expected<detail::TokenizerOptions> options = detail::check_tokenizer_options(parts->rest, origin);
  if (!options.ok()) return options.status();
  auto impl = std::make_unique<Impl>();
  impl->normalize_nfc = options->normalize_nfc;
  impl->split = options->split;
  impl->ignore_merges = options->ignore_merges;
  if (!parts->has_vocab) return invalid_argument(origin + ": model.vocab is missing");
  if (!parts->has_merges) return invalid_argument(origin + ": model.merges is missing");

  // Vocabulary.
  int64_t max_id = -1;
  impl->vocab.reserve(parts->vocab.size());
  for (const auto& [token, id] : parts->vocab) {
    if (id < 0 || id > kMaxId) {
      return invalid_argument(origin + ": model.vocab \"" + token + "\" has id " +
                              std::to_string(id) + " (must be in 0.." + std::to_string(kMaxId) +
                              ")");
    }
    max_id = std::max(max_id, id);
  }
  const auto& added_json = parts->rest["added_tokens"];
  for (const auto& token : added_json)
    max_id = std::max<int64_t>(max_id, token["id"].get<int64_t>());
  impl->id_bytes.assign(static_cast<size_t>(max_id + 1), std::string());
  for (auto& [token, id] : parts->vocab) {
    impl->id_bytes[id] = byte_level_to_bytes(token);
    impl->vocab.insert_or_assign(std::move(token), static_cast<int32_t>(id));
  }
  impl->byte_ids.fill(-1);
  for (int b = 0; b < 256; ++b) {
    std::string spelled;
    unicode::append_utf8(spelled, byte_chars().byte_to_char[b]);
    const auto it = impl->vocab.find(spelled);
    if (it != impl->vocab.end()) impl->byte_ids[b] = it->second;
  }

  // Merges: the rank is the position in the list.
  impl->merges.reserve(parts->merges.size());
  std::string joined;
  for (size_t rank = 0; rank < parts->merges.size(); ++rank) {
    const auto& [left, right] = parts->merges[rank];
    joined.assign(left).append(right);
    const auto l = impl->vocab.find(left);
    const auto r = impl->vocab.find(right);
    const auto m = impl->vocab.find(joined);
    if (l == impl->vocab.end() || r == impl->vocab.end() || m == impl->vocab.end()) {
      const std::string& missing = l == impl->vocab.end()   ? left
                                   : r == impl->vocab.end() ? right
                                                            : joined;
      return invalid_argument(origin + ": model.merges[" + std::to_string(rank) + "] (\"" + left +
                              "\", \"" + right + "\"): token \"" + missing +
                              "\" is not in model.vocab");
    }
    impl->merges.insert(l->second, r->second, static_cast<int32_t>(rank), m->second);
  }

  // Added tokens: they decode through the ByteLevel decoder like any token.
  for (const auto& token : added_json) {
    AddedToken added{token["content"].get<std::string>(), token["id"].get<int32_t>()};
    impl->id_bytes[added.id] = byte_level_to_bytes(added.content);
    impl->added.push_back(std::move(added));
  }
  impl->index_added_tokens();
  return Tokenizer(std::move(impl));
}

// ---- the byte-level tokenizer ----

Tokenizer Tokenizer::byte_level(std::vector<std::string> special_tokens) {
  auto impl = std::make_unique<Impl>();
  impl->byte_only = true;
  impl->id_bytes.resize(256 + special_tokens.size());
  for (int b = 0; b < 256; ++b) {
    impl->byte_ids[b] = b;
    impl->id_bytes[b] = std::string(1, static_cast<char>(b));
    std::string spelled;
    unicode::append_utf8(spelled, byte_chars().byte_to_char[b]);
    impl->vocab.emplace(std::move(spelled), b);
  }
  for (size_t i = 0; i < special_tokens.size(); ++i) {
    const int32_t id = static_cast<int32_t>(256 + i);
    TORL_CHECK(!special_tokens[i].empty(), "byte_level: empty special token");
    impl->id_bytes[id] = special_tokens[i];
    impl->added.push_back(AddedToken{std::move(special_tokens[i]), id});
  }
  impl->index_added_tokens();
  TORL_CHECK(impl->added_by_content.size() == impl->added.size(),
             "byte_level: duplicate special token");
  return Tokenizer(std::move(impl));
}

// ---- encoding and decoding ----

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  std::vector<std::string_view> pieces;
  size_t pos = 0;
  while (pos <= text.size()) {
    const auto [start, index] = impl_->find_added(text, pos);
    const size_t end = start == std::string_view::npos ? text.size() : start;
    impl_->encode_segment(text.substr(pos, end - pos), out, pieces);
    if (start == std::string_view::npos) break;
    out.push_back(impl_->added[index].id);
    pos = start + impl_->added[index].content.size();
  }
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids) const {
  std::string bytes;
  for (const int32_t id : ids) {
    if (id >= 0 && static_cast<size_t>(id) < impl_->id_bytes.size()) bytes += impl_->id_bytes[id];
  }
  return unicode::utf8_lossy(bytes);
}

std::string_view Tokenizer::token_bytes(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= impl_->id_bytes.size()) return {};
  return impl_->id_bytes[static_cast<size_t>(id)];
}

std::optional<int32_t> Tokenizer::token_id(std::string_view token) const {
  if (const auto it = impl_->added_by_content.find(token); it != impl_->added_by_content.end()) {
    return it->second;
  }
  if (const auto it = impl_->vocab.find(token); it != impl_->vocab.end()) return it->second;
  return std::nullopt;
}

int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(impl_->id_bytes.size()); }

}  // namespace torl::model
