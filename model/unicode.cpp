#include "model/unicode.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <vector>

namespace torl::model::unicode {
namespace {

struct CodeRange {
  char32_t lo, hi;
};
struct ClassRange {
  char32_t lo, hi;
  uint8_t ccc;
};
struct Decomposition {
  char32_t cp;
  uint32_t offset, length;
};
struct Composition {
  char32_t first, second, composite;
};

#include "model/unicode_tables.inc"

constexpr char32_t kReplacement = 0xFFFD;

// Hangul syllable arithmetic (Unicode 3.12).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
                   kSCount = kLCount * kNCount;

constexpr uint8_t kLetterBit = 1, kNumberBit = 2, kSpaceBit = 4, kUnsafeBit = 8;
// Code points below this get their flags from one flat table; the rest use binary search.
constexpr char32_t kFlatLimit = 0x30000;

bool in_ranges(const CodeRange* begin, const CodeRange* end, char32_t cp) {
  const CodeRange* it =
      std::upper_bound(begin, end, cp, [](char32_t v, const CodeRange& r) { return v < r.lo; });
  return it != begin && cp <= (it - 1)->hi;
}

bool whitespace_slow(char32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

const std::vector<uint8_t>& flag_table() {
  static const std::vector<uint8_t> table = [] {
    std::vector<uint8_t> t(kFlatLimit, 0);
    auto mark = [&t](const CodeRange* begin, const CodeRange* end, uint8_t bit) {
      for (const CodeRange* r = begin; r != end; ++r) {
        for (char32_t cp = r->lo; cp <= r->hi && cp < kFlatLimit; ++cp) t[cp] |= bit;
      }
    };
    mark(std::begin(kLetterRanges), std::end(kLetterRanges), kLetterBit);
    mark(std::begin(kNumberRanges), std::end(kNumberRanges), kNumberBit);
    mark(std::begin(kNfcUnsafeRanges), std::end(kNfcUnsafeRanges), kUnsafeBit);
    for (char32_t cp = 0; cp < 0x3001; ++cp) {
      if (whitespace_slow(cp)) t[cp] |= kSpaceBit;
    }
    return t;
  }();
  return table;
}

uint8_t combining_class(char32_t cp) {
  if (cp < 0x300) return 0;
  const ClassRange* begin = std::begin(kCombiningClasses);
  const ClassRange* end = std::end(kCombiningClasses);
  const ClassRange* it =
      std::upper_bound(begin, end, cp, [](char32_t v, const ClassRange& r) { return v < r.lo; });
  return (it != begin && cp <= (it - 1)->hi) ? (it - 1)->ccc : 0;
}

void decompose(char32_t cp, std::vector<char32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const char32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  const Decomposition* begin = std::begin(kDecompositions);
  const Decomposition* end = std::end(kDecompositions);
  const Decomposition* it =
      std::lower_bound(begin, end, cp, [](const Decomposition& d, char32_t v) { return d.cp < v; });
  if (it == end || it->cp != cp) {
    out.push_back(cp);
    return;
  }
  out.insert(out.end(), kDecompositionPool + it->offset,
             kDecompositionPool + it->offset + it->length);
}

// The primary composite of `first` + `second`, or 0 when there is none.
char32_t compose(char32_t first, char32_t second) {
  if (first >= kLBase && first < kLBase + kLCount && second >= kVBase &&
      second < kVBase + kVCount) {
    return kSBase + ((first - kLBase) * kVCount + (second - kVBase)) * kTCount;
  }
  if (first >= kSBase && first < kSBase + kSCount && (first - kSBase) % kTCount == 0 &&
      second > kTBase && second < kTBase + kTCount) {
    return first + (second - kTBase);
  }
  const Composition* begin = std::begin(kCompositions);
  const Composition* end = std::end(kCompositions);
  const Composition* it =
      std::lower_bound(begin, end, std::pair(first, second),
                       [](const Composition& c, std::pair<char32_t, char32_t> v) {
                         return c.first < v.first || (c.first == v.first && c.second < v.second);
                       });
  if (it == end || it->first != first || it->second != second) return 0;
  return it->composite;
}

}  // namespace

char32_t decode_utf8(std::string_view text, size_t& pos) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(text[i]); };
  const uint8_t b0 = byte(pos);
  if (b0 < 0x80) {
    ++pos;
    return b0;
  }
  size_t length = 0;
  char32_t cp = 0;
  char32_t min = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    length = 2, cp = b0 & 0x1F, min = 0x80;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    length = 3, cp = b0 & 0x0F, min = 0x800;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    length = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    ++pos;
    return kReplacement;
  }
  if (pos + length > text.size()) {
    ++pos;
    return kReplacement;
  }
  for (size_t i = 1; i < length; ++i) {
    const uint8_t b = byte(pos + i);
    if ((b & 0xC0) != 0x80) {
      ++pos;
      return kReplacement;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    ++pos;
    return kReplacement;
  }
  pos += length;
  return cp;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool is_letter(char32_t cp) {
  if (cp < kFlatLimit) return flag_table()[cp] & kLetterBit;
  return in_ranges(std::begin(kLetterRanges), std::end(kLetterRanges), cp);
}

bool is_number(char32_t cp) {
  if (cp < kFlatLimit) return flag_table()[cp] & kNumberBit;
  return in_ranges(std::begin(kNumberRanges), std::end(kNumberRanges), cp);
}

bool is_whitespace(char32_t cp) { return cp < 0x3001 && (flag_table()[cp] & kSpaceBit); }

bool is_nfc_quick(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size() && static_cast<uint8_t>(text[pos]) < 0x80) ++pos;
  if (pos == text.size()) return true;
  const std::vector<uint8_t>& flags = flag_table();
  while (pos < text.size()) {
    const char32_t cp = decode_utf8(text, pos);
    if (cp < 0x300) continue;  // nothing below U+0300 is unsafe
    if (cp < kFlatLimit ? (flags[cp] & kUnsafeBit)
                        : in_ranges(std::begin(kNfcUnsafeRanges), std::end(kNfcUnsafeRanges), cp)) {
      return false;
    }
  }
  return true;
}

std::string to_nfc(std::string_view text) {
  if (is_nfc_quick(text)) return std::string(text);
  // Invalid bytes must survive untouched: they become U+FFFD stand-ins tagged with their byte value
  // (above U+10FFFF), so no composition involves them.
  constexpr char32_t kRawByteBase = 0x110000;
  std::vector<char32_t> chars;
  chars.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const size_t start = pos;
    const char32_t cp = decode_utf8(text, pos);
    if (cp == kReplacement && pos - start == 1) {
      chars.push_back(kRawByteBase + static_cast<uint8_t>(text[start]));
    } else {
      decompose(cp, chars);
    }
  }
  // Canonical ordering: stable sort of each run of non-starters by combining class.
  std::vector<uint8_t> classes(chars.size());
  for (size_t i = 0; i < chars.size(); ++i) {
    classes[i] = chars[i] >= kRawByteBase ? 0 : combining_class(chars[i]);
  }
  for (size_t i = 0; i < chars.size();) {
    if (classes[i] == 0) {
      ++i;
      continue;
    }
    size_t end = i;
    while (end < chars.size() && classes[end] != 0) ++end;
    for (size_t a = i + 1; a < end; ++a) {  // insertion sort: runs are short
      for (size_t b = a; b > i && classes[b - 1] > classes[b]; --b) {
        std::swap(classes[b - 1], classes[b]);
        std::swap(chars[b - 1], chars[b]);
      }
    }
    i = end;
  }
  // Canonical composition.
  std::string out;
  out.reserve(text.size());
  if (!chars.empty()) {
    size_t starter = 0;
    int last_class = classes[0] == 0 ? 0 : 256;
    bool have_starter = classes[0] == 0 && chars[0] < kRawByteBase;
    size_t kept = 1;
    for (size_t i = 1; i < chars.size(); ++i) {
      const char32_t ch = chars[i];
      const int ch_class = classes[i];
      if (have_starter && ch < kRawByteBase && (last_class < ch_class || last_class == 0)) {
        const char32_t composite = compose(chars[starter], ch);
        if (composite != 0) {
          chars[starter] = composite;
          continue;
        }
      }
      if (ch_class == 0) {
        starter = kept;
        have_starter = ch < kRawByteBase;
      }
      last_class = ch_class;
      classes[kept] = classes[i];
      chars[kept++] = ch;
    }
    chars.resize(kept);
  }
  for (const char32_t cp : chars) {
    if (cp >= kRawByteBase) {
      out.push_back(static_cast<char>(cp - kRawByteBase));
    } else {
      append_utf8(out, cp);
    }
  }
  return out;
}

std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t pos = 0;
  while (pos < bytes.size()) {
    const uint8_t b0 = static_cast<uint8_t>(bytes[pos]);
    if (b0 < 0x80) {
      out.push_back(static_cast<char>(b0));
      ++pos;
      continue;
    }
    // Length of the valid sequence starting here, or of the maximal invalid prefix (WHATWG rule:
    // stop at the first byte that cannot continue the sequence).
    size_t need = 0;
    uint8_t lo = 0x80, hi = 0xBF;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      need = 1;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      need = 2;
      if (b0 == 0xE0) lo = 0xA0;
      if (b0 == 0xED) hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      need = 3;
      if (b0 == 0xF0) lo = 0x90;
      if (b0 == 0xF4) hi = 0x8F;
    } else {
      out += "\xEF\xBF\xBD";
      ++pos;
      continue;
    }
    size_t i = 1;
    bool valid = true;
    for (; i <= need; ++i) {
      if (pos + i >= bytes.size()) {
        valid = false;
        break;
      }
      const uint8_t b = static_cast<uint8_t>(bytes[pos + i]);
      if (b < lo || b > hi) {
        valid = false;
        break;
      }
      lo = 0x80, hi = 0xBF;
    }
    if (valid) {
      out.append(bytes.substr(pos, need + 1));
      pos += need + 1;
    } else {
      out += "\xEF\xBF\xBD";
      pos += i;
    }
  }
  return out;
}

}  // namespace torl::model::unicode
