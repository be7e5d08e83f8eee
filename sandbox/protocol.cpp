#include "sandbox/protocol.hpp"

#include <string>

#include "common/check.hpp"

namespace torl::sandbox {
namespace {

// --- UTF-8 <-> code points --------------------------------------------------------------------------

constexpr char32_t kReplacement = 0xFFFD;

// The range the second byte of a sequence may take, per lead byte (Unicode Table 3-7); later bytes
// are always 80..BF. Returns the sequence length, or 0 for a byte that cannot start a sequence.
int sequence_length(unsigned char lead, unsigned char* second_lo, unsigned char* second_hi) {
  *second_lo = 0x80;
  *second_hi = 0xBF;
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) {
    if (lead == 0xE0) *second_lo = 0xA0;
    if (lead == 0xED) *second_hi = 0x9F;  // no surrogates
    return 3;
  }
  if (lead >= 0xF0 && lead <= 0xF4) {
    if (lead == 0xF0) *second_lo = 0x90;
    if (lead == 0xF4) *second_hi = 0x8F;  // nothing above U+10FFFF
    return 4;
  }
  return 0;
}

// Decodes `bytes`, replacing each maximal subpart of an ill-formed sequence with one U+FFFD, which is
// what Python's bytes.decode("utf-8", errors="replace") does: the observation then counts and cuts
// characters exactly as ToRL's Python does.
std::u32string decode_utf8(std::string_view bytes) {
  std::u32string out;
  out.reserve(bytes.size());
  std::size_t i = 0;
  while (i < bytes.size()) {
    const auto lead = static_cast<unsigned char>(bytes[i]);
    unsigned char lo = 0, hi = 0;
    const int length = sequence_length(lead, &lo, &hi);
    if (length == 0) {
      out.push_back(kReplacement);
      ++i;
      continue;
    }
    char32_t code_point = length == 1 ? lead : lead & (0x7F >> length);
    int taken = 1;
    for (; taken < length && i + taken < bytes.size(); ++taken) {
      const auto byte = static_cast<unsigned char>(bytes[i + taken]);
      if (byte < lo || byte > hi) break;
      code_point = (code_point << 6) | (byte & 0x3F);
      lo = 0x80;
      hi = 0xBF;
    }
    out.push_back(taken == length ? code_point : kReplacement);
    i += taken;
  }
  return out;
}

std::string encode_utf8(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char32_t c : text) {
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if (c < 0x800) {
      out += static_cast<char>(0xC0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
      out += static_cast<char>(0xE0 | (c >> 12));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (c & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (c >> 18));
      out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (c & 0x3F));
    }
  }
  return out;
}

std::u32string from_ascii(std::string_view text) { return {text.begin(), text.end()}; }

// --- Python's str methods ---------------------------------------------------------------------------

// str.isspace(): bidirectional class WS, B or S, or category Zs.
bool is_python_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

// str.strip() with no arguments.
std::u32string_view strip(std::u32string_view text) {
  while (!text.empty() && is_python_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_python_space(text.back())) text.remove_suffix(1);
  return text;
}

// text.split("\n")[-1]
std::u32string_view last_line(std::u32string_view text) {
  const auto newline = text.rfind(U'\n');
  return newline == std::u32string_view::npos ? text : text.substr(newline + 1);
}

// ToRL's final cut: text[:128] + "..." + text[-128:] when len(text) >= 256.
std::u32string shorten(std::u32string_view text) {
  if (text.size() < kMaxObservationChars) return std::u32string(text);
  std::u32string out(text.substr(0, kKeptObservationChars));
  out += U"...";
  out += text.substr(text.size() - kKeptObservationChars);
  return out;
}

// Appends `part` to `text`, starting it on a new line when `text` has content.
void append_part(std::u32string& text, std::u32string_view part) {
  if (part.empty()) return;
  if (!text.empty() && text.back() != U'\n') text += U'\n';
  text += part;
}

// --- the feedback modes -----------------------------------------------------------------------------

std::u32string torl_observation(const ExecutionResult& result) {
  const bool use_stdout = result.exit_code == 0 || !result.stdout_text.empty();
  std::u32string text = decode_utf8(use_stdout ? result.stdout_text : result.stderr_text);
  if (text.find(U"Error") != std::u32string::npos) text = last_line(strip(text));
  if (strip(text).empty()) text = from_ascii(kEmptyObservation);
  return shorten(strip(text));
}

std::string status_line(const ExecutionResult& result) {
  std::string line = std::string("[status: ") + status_name(result.status);
  if (result.status == ExecutionStatus::kError) line += ", exit code " + std::to_string(result.exit_code);
  if (result.status == ExecutionStatus::kKilled) line += ", signal " + std::to_string(result.signal);
  return line + "]";
}

std::u32string full_observation(const ExecutionResult& result) {
  std::u32string text = decode_utf8(result.stdout_text);
  append_part(text, decode_utf8(result.stderr_text));
  if (result.status != ExecutionStatus::kOk) append_part(text, from_ascii(status_line(result)));
  return shorten(strip(text));
}

}  // namespace

std::optional<std::string> extract_code(std::string_view text) {
  if (text.ends_with(kStopString)) text.remove_suffix(kStopString.size());
  bool open = false;
  std::size_t code_begin = 0;
  std::string_view code;  // the last closed block; cleared when a new block opens
  std::size_t line_begin = 0;
  while (line_begin <= text.size()) {
    auto line_end = text.find('\n', line_begin);
    if (line_end == std::string_view::npos) line_end = text.size();
    const std::string_view line = text.substr(line_begin, line_end - line_begin);
    if (line.starts_with("```python")) {
      open = true;
      code_begin = line_end + 1;
      code = {};
    } else if (open && line.starts_with("```")) {
      open = false;
      code = text.substr(code_begin, line_begin - code_begin);
    }
    line_begin = line_end + 1;
  }
  if (open || code.empty()) return std::nullopt;
  return std::string(code);
}

std::string format_observation(const ExecutionResult& result, config::ToolFeedback mode) {
  switch (mode) {
    case config::ToolFeedback::kTorl:
      return encode_utf8(torl_observation(result));
    case config::ToolFeedback::kFull:
      return encode_utf8(full_observation(result));
    case config::ToolFeedback::kNone:
      // ToRL's code has no switch for this ablation. Failures show a fixed text rather than nothing:
      // the ablation removes the error *message* but keeps the fact that the code failed, so it does
      // not also make failures look like silent successes (and empty text would turn into
      // kEmptyObservation, itself an error message).
      if (result.status != ExecutionStatus::kOk) return std::string(kMaskedFailureObservation);
      return encode_utf8(torl_observation(result));
  }
  TORL_CHECK(false, "unknown config::ToolFeedback value " + std::to_string(static_cast<int>(mode)));
}

std::string observation_suffix(std::string_view observation) {
  std::string suffix = "\n";
  suffix += observation;
  suffix += "\n```\n";
  return suffix;
}

}  // namespace torl::sandbox
