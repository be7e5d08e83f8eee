#include "model/tokenizer_json.hpp"

#include <charconv>
#include <cstring>

#include "model/unicode.hpp"

namespace torl::model::detail {
namespace {

// A forward-only JSON reader over one buffer. Every method returns false on malformed input and
// leaves `error` saying what was expected where.
class Scanner {
 public:
  explicit Scanner(std::string_view text) : text_(text) {}

  size_t pos() const { return pos_; }
  const std::string& error() const { return error_; }

  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\n' ||
                                   text_[pos_] == '\r' || text_[pos_] == '\t')) {
      ++pos_;
    }
  }

  // Consumes `c` (after whitespace) when it is next.
  bool consume(char c) {
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  bool expect(char c) {
    if (consume(c)) return true;
    return fail(std::string("expected '") + c + "'");
  }

  bool read_string(std::string& out) {
    out.clear();
    skip_space();
    if (pos_ >= text_.size() || text_[pos_] != '"') return fail("expected a string");
    ++pos_;
    while (true) {
      const size_t start = pos_;
      while (pos_ < text_.size() && text_[pos_] != '"' && text_[pos_] != '\\') ++pos_;
      out.append(text_.substr(start, pos_ - start));
      if (pos_ >= text_.size()) return fail("unterminated string");
      if (text_[pos_++] == '"') return true;
      if (pos_ >= text_.size()) return fail("unterminated string");
      const char e = text_[pos_++];
      switch (e) {
        case '"':
          out.push_back('"');
          break;
        case '\\':
          out.push_back('\\');
          break;
        case '/':
          out.push_back('/');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'u': {
          char32_t cp = 0;
          if (!read_hex4(cp)) return false;
          if (cp >= 0xD800 && cp <= 0xDBFF && pos_ + 1 < text_.size() && text_[pos_] == '\\' &&
              text_[pos_ + 1] == 'u') {
            const size_t save = pos_;
            pos_ += 2;
            char32_t low = 0;
            if (!read_hex4(low)) return false;
            if (low >= 0xDC00 && low <= 0xDFFF) {
              cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            } else {
              pos_ = save;
            }
          }
          if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;  // lone surrogate
          unicode::append_utf8(out, cp);
          break;
        }
        default:
          return fail("bad escape in string");
      }
    }
  }

  bool read_integer(int64_t& out) {
    skip_space();
    const char* begin = text_.data() + pos_;
    const auto [end, ec] = std::from_chars(begin, text_.data() + text_.size(), out);
    if (ec != std::errc()) return fail("expected an integer");
    pos_ += end - begin;
    return true;
  }

  // Skips one value of any type.
  bool skip_value() {
    skip_space();
    if (pos_ >= text_.size()) return fail("expected a value");
    const char c = text_[pos_];
    if (c == '"') {
      std::string ignored;
      return read_string(ignored);
    }
    if (c == '{' || c == '[') {
      const char close = c == '{' ? '}' : ']';
      ++pos_;
      if (consume(close)) return true;
      do {
        if (c == '{') {
          std::string key;
          if (!read_string(key) || !expect(':')) return false;
        }
        if (!skip_value()) return false;
      } while (consume(','));
      return expect(close);
    }
    // number, true, false, null
    const size_t start = pos_;
    while (pos_ < text_.size() && std::strchr(",}] \n\r\t", text_[pos_]) == nullptr) ++pos_;
    if (pos_ == start) return fail("expected a value");
    return true;
  }

  bool fail(const std::string& what) {
    if (error_.empty()) error_ = what + " at byte " + std::to_string(pos_);
    return false;
  }

 private:
  bool read_hex4(char32_t& out) {
    if (pos_ + 4 > text_.size()) return fail("bad \\u escape");
    out = 0;
    for (int i = 0; i < 4; ++i) {
      const char h = text_[pos_++];
      out <<= 4;
      if (h >= '0' && h <= '9')
        out |= h - '0';
      else if (h >= 'a' && h <= 'f')
        out |= h - 'a' + 10;
      else if (h >= 'A' && h <= 'F')
        out |= h - 'A' + 10;
      else
        return fail("bad \\u escape");
    }
    return true;
  }

  std::string_view text_;
  size_t pos_ = 0;
  std::string error_;
};

bool read_vocab(Scanner& s, TokenizerJsonParts& parts) {
  if (!s.expect('{')) return false;
  parts.vocab.reserve(160000);
  if (s.consume('}')) return true;
  do {
    std::string token;
    int64_t id = 0;
    if (!s.read_string(token) || !s.expect(':') || !s.read_integer(id)) return false;
    parts.vocab.emplace_back(std::move(token), id);
  } while (s.consume(','));
  return s.expect('}');
}

bool read_merges(Scanner& s, TokenizerJsonParts& parts) {
  if (!s.expect('[')) return false;
  parts.merges.reserve(160000);
  if (s.consume(']')) return true;
  std::string line;
  do {
    std::string a, b;
    if (s.consume('[')) {
      if (!s.read_string(a) || !s.expect(',') || !s.read_string(b) || !s.expect(']')) return false;
    } else {
      if (!s.read_string(line)) return false;
      const size_t space = line.find(' ');
      if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos) {
        return s.fail("merge " + std::to_string(parts.merges.size()) + " \"" + line +
                      "\" is not two tokens separated by one space");
      }
      a = line.substr(0, space);
      b = line.substr(space + 1);
    }
    parts.merges.emplace_back(std::move(a), std::move(b));
  } while (s.consume(','));
  return s.expect(']');
}

}  // namespace

Expected<TokenizerJsonParts> read_tokenizer_json(std::string_view text, const std::string& origin) {
  TokenizerJsonParts parts;
  Scanner s(text);
  // Spans of the two big values, to be cut out of the text given to nlohmann-json.
  size_t vocab_begin = 0, vocab_end = 0, merges_begin = 0, merges_end = 0;
  const auto malformed = [&]() {
    return invalid_argument(origin + ": malformed JSON: " + s.error());
  };
  if (!s.expect('{')) return malformed();
  if (!s.consume('}')) {
    do {
      std::string key;
      if (!s.read_string(key) || !s.expect(':')) return malformed();
      s.skip_space();
      if (key != "model" || !s.consume('{')) {
        if (!s.skip_value()) return malformed();
        continue;
      }
      if (s.consume('}')) continue;
      do {
        std::string model_key;
        if (!s.read_string(model_key) || !s.expect(':')) return malformed();
        s.skip_space();
        const size_t begin = s.pos();
        if (model_key == "vocab") {
          if (!read_vocab(s, parts)) return malformed();
          parts.has_vocab = true;
          vocab_begin = begin, vocab_end = s.pos();
        } else if (model_key == "merges") {
          if (!read_merges(s, parts)) return malformed();
          parts.has_merges = true;
          merges_begin = begin, merges_end = s.pos();
        } else if (!s.skip_value()) {
          return malformed();
        }
      } while (s.consume(','));
      if (!s.expect('}')) return malformed();
    } while (s.consume(','));
    if (!s.expect('}')) return malformed();
  }

  std::string rest;
  rest.reserve(text.size() - (vocab_end - vocab_begin) - (merges_end - merges_begin) + 4);
  struct Cut {
    size_t begin, end;
    const char* replacement;
  };
  Cut cuts[2] = {{vocab_begin, vocab_end, "{}"}, {merges_begin, merges_end, "[]"}};
  if (cuts[0].begin > cuts[1].begin) std::swap(cuts[0], cuts[1]);
  size_t at = 0;
  for (const Cut& cut : cuts) {
    if (cut.end == 0) continue;
    rest.append(text.substr(at, cut.begin - at));
    rest.append(cut.replacement);
    at = cut.end;
  }
  rest.append(text.substr(at));
  Expected<Json> json = parse_json(rest, origin);
  if (!json.ok()) return json.status();
  parts.rest = std::move(*json);
  return parts;
}

}  // namespace torl::model::detail
