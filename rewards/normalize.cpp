// normalize_answer (answer.hpp): one hand-written scanner, no std::regex and no repeated
// find/replace passes (it runs twice per grade).
//
// - Leading "VAR =": VAR is one letter (optionally subscripted) or a Greek letter; it is removed
//   only when the right-hand side names no other variable (letters only inside known constant and
//   function commands, or a lone i or e): "x = \frac{1}{2}" -> "\frac{1}{2}", "y = 2x + 1" stays.
// - Units: a fixed list, removed only at the end, after a space (or glued to a digit for the
//   unambiguous ones such as "10cm"), and only when what is left ends like a quantity (a digit, a
//   closing bracket or a command such as \pi). One-letter and ambiguous units (m, s, g, h, L, in)
//   are removed only when they are the content of a \text{}/\mbox{}/\mathrm{} group. C and F only
//   directly after a degree mark.
// - Thousands separators: "{,}", ",\!" and "\," between a digit and exactly three digits anywhere;
//   a plain "," only when the whole answer is one number (1,000,000 or -12,345.67 or 1,000%).
// - "percent" at the end becomes "%" like \%. Every '$' and every \( \) \[ \] is removed, not only
//   outer ones: inside an answer they are never mathematics.
// - The result is idempotent: normalize_answer(normalize_answer(a)) == normalize_answer(a).
#include <algorithm>
#include <array>
#include <cstdint>
#include <string>

#include "rewards/answer.hpp"
#include "rewards/text_scan.hpp"

namespace torl::rewards {
namespace {

using namespace detail;

// ---- normalisation: the command table ----

enum class CommandKind {
  kDrop,       // removed: \! \displaystyle
  kDelimiter,  // \left \right \big...: removed, and a following '.' (the empty delimiter)
  kSpace,      // becomes one space: \quad
  kReplace,    // becomes `replacement`: \dfrac -> \frac
  kUnwrap,     // \text{x} -> x; without a group the command alone is removed
  kDegree,     // \degree: removed, remembered for a following C or F
};

struct CommandRule {
  std::string_view name;  // without the backslash
  CommandKind kind;
  std::string_view replacement = {};
};

using enum CommandKind;

// Sorted by name (checked below) for binary search.
// clang-format off
constexpr CommandRule kCommandRules[] = {
    {"Big", kDelimiter}, {"Bigg", kDelimiter}, {"Biggl", kDelimiter}, {"Biggm", kDelimiter},
    {"Biggr", kDelimiter}, {"Bigl", kDelimiter}, {"Bigm", kDelimiter}, {"Bigr", kDelimiter},
    {"big", kDelimiter}, {"bigg", kDelimiter}, {"biggl", kDelimiter}, {"biggm", kDelimiter},
    {"biggr", kDelimiter}, {"bigl", kDelimiter}, {"bigm", kDelimiter}, {"bigr", kDelimiter},
    {"boldsymbol", kUnwrap}, {"dbinom", kReplace, "\\binom"}, {"degree", kDegree},
    {"dfrac", kReplace, "\\frac"}, {"displaystyle", kDrop}, {"emph", kUnwrap}, {"enspace", kSpace},
    {"ge", kReplace, "\\ge"}, {"geq", kReplace, "\\ge"}, {"geqslant", kReplace, "\\ge"},
    {"gt", kReplace, ">"}, {"hbox", kUnwrap}, {"lbrace", kReplace, "\\{"}, {"le", kReplace, "\\le"},
    {"left", kDelimiter}, {"leq", kReplace, "\\le"}, {"leqslant", kReplace, "\\le"},
    {"lt", kReplace, "<"}, {"mathbf", kUnwrap}, {"mathit", kUnwrap}, {"mathnormal", kUnwrap},
    {"mathrm", kUnwrap}, {"mathsf", kUnwrap}, {"mathtt", kUnwrap}, {"mbox", kUnwrap},
    {"middle", kDelimiter}, {"ne", kReplace, "\\ne"}, {"neq", kReplace, "\\ne"},
    {"operatorname", kUnwrap}, {"qquad", kSpace}, {"quad", kSpace}, {"rbrace", kReplace, "\\}"},
    {"right", kDelimiter}, {"scriptstyle", kDrop}, {"tbinom", kReplace, "\\binom"},
    {"text", kUnwrap}, {"textbf", kUnwrap}, {"textdegree", kDegree}, {"textit", kUnwrap},
    {"textnormal", kUnwrap}, {"textrm", kUnwrap}, {"textsf", kUnwrap}, {"textstyle", kDrop},
    {"texttt", kUnwrap}, {"textup", kUnwrap}, {"tfrac", kReplace, "\\frac"}, {"thinspace", kSpace},
};
// clang-format on
static_assert(std::ranges::is_sorted(kCommandRules, {}, &CommandRule::name),
              "kCommandRules must stay sorted by name");

const CommandRule* find_command_rule(std::string_view name) {
  const auto* it = std::ranges::lower_bound(kCommandRules, name, {}, &CommandRule::name);
  return (it != std::ranges::end(kCommandRules) && it->name == name) ? it : nullptr;
}

// ---- normalisation: units ----

enum class UnitScope {
  kWord,         // after a space, glued to a digit ("10cm") if 2+ letters, or as \text{} content
  kTextOnly,     // only as the content of \text{} / \mbox{} / \mathrm{}: m, s, in, ...
  kAfterDegree,  // C and F right after a degree mark
  kConnector,    // square, sq, cubic, per: removed only together with a unit after them
};

struct UnitWord {
  std::string_view word;  // 3+ letters match case-insensitively
  UnitScope scope;
};

using enum UnitScope;

// clang-format off
constexpr UnitWord kUnitWords[] = {
    // length and area
    {"mm", kWord}, {"cm", kWord}, {"km", kWord}, {"m", kTextOnly}, {"meter", kWord},
    {"meters", kWord}, {"metre", kWord}, {"metres", kWord}, {"centimeter", kWord},
    {"centimeters", kWord}, {"millimeter", kWord}, {"millimeters", kWord}, {"kilometer", kWord},
    {"kilometers", kWord}, {"in", kTextOnly}, {"inch", kWord}, {"inches", kWord}, {"ft", kWord},
    {"foot", kWord}, {"feet", kWord}, {"yd", kWord}, {"yard", kWord}, {"yards", kWord},
    {"mi", kTextOnly}, {"mile", kWord}, {"miles", kWord}, {"unit", kWord}, {"units", kWord},
    // time
    {"s", kTextOnly}, {"sec", kWord}, {"secs", kWord}, {"second", kWord}, {"seconds", kWord},
    {"min", kWord}, {"mins", kWord}, {"minute", kWord}, {"minutes", kWord}, {"h", kTextOnly},
    {"hr", kWord}, {"hrs", kWord}, {"hour", kWord}, {"hours", kWord}, {"day", kWord},
    {"days", kWord}, {"week", kWord}, {"weeks", kWord}, {"month", kWord}, {"months", kWord},
    {"year", kWord}, {"years", kWord},
    // angles and money
    {"degree", kWord}, {"degrees", kWord}, {"radian", kWord}, {"radians", kWord}, {"dollar", kWord},
    {"dollars", kWord}, {"cent", kWord}, {"cents", kWord},
    // mass and volume
    {"g", kTextOnly}, {"kg", kWord}, {"mg", kWord}, {"gram", kWord}, {"grams", kWord},
    {"kilogram", kWord}, {"kilograms", kWord}, {"lb", kWord}, {"lbs", kWord}, {"pound", kWord},
    {"pounds", kWord}, {"ounce", kWord}, {"ounces", kWord}, {"oz", kWord}, {"L", kTextOnly},
    {"ml", kWord}, {"mL", kWord}, {"liter", kWord}, {"liters", kWord}, {"litre", kWord},
    {"litres", kWord}, {"gallon", kWord}, {"gallons", kWord},
    // speed
    {"mph", kWord}, {"km/h", kWord}, {"m/s", kWord},
    // after a degree mark, and words that only join units
    {"C", kAfterDegree}, {"F", kAfterDegree}, {"square", kConnector}, {"sq", kConnector},
    {"sq.", kConnector}, {"cubic", kConnector}, {"per", kConnector},
};
// clang-format on

const UnitWord* find_unit_word(std::string_view word) {
  for (const UnitWord& unit : kUnitWords) {
    if (unit.word.size() != word.size()) continue;
    if (word.size() >= 3 ? equals_ignoring_case(unit.word, word) : unit.word == word) return &unit;
  }
  return nullptr;
}

// Commands that name a constant or a function, not a variable: a right-hand side made only of
// these, digits and operators is a value, so "x = <it>" can lose its "x =".
constexpr auto kValueCommands = std::to_array<std::string_view>({
    "arccos", "arcsin", "arctan", "binom", "cdot", "cos",  "cot",  "csc", "div",
    "exp",    "frac",   "infty",  "ln",    "log",  "mp",   "pi",   "pm",  "sec",
    "sin",    "sqrt",   "tan",    "times", "cosh", "sinh", "tanh", "lg",  "ldots",
});

constexpr auto kGreekVariables = std::to_array<std::string_view>({
    "alpha", "beta",     "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta",
    "theta", "vartheta", "iota",  "kappa", "lambda",  "mu",         "nu",   "xi",
    "rho",   "sigma",    "tau",   "phi",   "varphi",  "chi",        "psi",  "omega",
});

template <std::size_t N>
bool contains(const std::array<std::string_view, N>& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// ---- normalisation: the scanner ----

class Normalizer {
 public:
  explicit Normalizer(std::string_view input) : in_(input) { out_.reserve(input.size() + 4); }

  std::string run() {
    scan();
    strip_trailing();
    strip_leading_variable();
    remove_plain_thousands_separators();
    return std::move(out_);
  }

 private:
  // One pass over the input: commands, braces, spaces, degree marks, dollars.
  void scan() {
    std::size_t i = 0;
    const std::size_t n = in_.size();
    while (i < n) {
      const char c = in_[i];
      if (c == '\\') {
        i = scan_command(i);
      } else if (c == '^') {
        const std::size_t end = degree_mark_end(i);
        if (end != kNone) {
          note_degree();
          i = end;
        } else {
          emit('^');
          ++i;
        }
      } else if (c == '{') {
        if (in_.substr(i, 3) == "{,}") {
          // "1{,}000": a thousands separator; elsewhere "{,}" is a plain comma.
          if (!ends_with_digit() || !three_digit_group_at(in_, i + 3)) emit(',');
          i += 3;
        } else {
          push_group(false);
          emit('{');
          ++i;
        }
      } else if (c == '}') {
        if (pop_group()) {
          text_end_ = out_.size();
        } else if (ends_with_group_comma()) {
          out_.resize(out_.size() - 2);  // "{{,}}" is a comma too; keeps normalising idempotent
          emit(',');
        } else {
          emit('}');
        }
        ++i;
      } else if (c == ',') {
        // "10,\!080" and "11,\! 111": the LaTeX idiom for a thousands separator.
        std::size_t j = i + 1;
        if (ends_with_digit() && in_.substr(j, 2) == "\\!") {
          j += 2;
          while (j < n && in_[j] == ' ') ++j;
          if (three_digit_group_at(in_, j)) {
            i = j;
            continue;
          }
        }
        emit(',');
        ++i;
      } else if (c == '$') {
        ++i;  // a math delimiter or a dollar sign: neither is mathematics
      } else if (c == '~' || is_space(c)) {
        emit(' ');
        ++i;
      } else if (static_cast<unsigned char>(c) == 0xC2 && i + 1 < n &&
                 static_cast<unsigned char>(in_[i + 1]) == 0xB0) {
        note_degree();  // UTF-8 '°'
        i += 2;
      } else if (static_cast<unsigned char>(c) == 0xB0 && !out_.empty() &&
                 static_cast<unsigned char>(out_.back()) == 0xC2) {
        out_.pop_back();  // a '°' split by something removed (invalid UTF-8 in the input)
        note_degree();
        ++i;
      } else {
        emit(c);
        ++i;
      }
    }
    while (!out_.empty() && out_.back() == ' ') out_.pop_back();
  }

  // Handles the command starting at in_[i] == '\\'; returns the index after it.
  std::size_t scan_command(std::size_t i) {
    const std::size_t n = in_.size();
    if (i + 1 >= n) {
      emit('\\');
      return n;
    }
    const char next = in_[i + 1];
    if (!is_letter(next)) {
      const std::size_t after = i + 2;
      switch (next) {
        case '$':  // a dollar sign
        case '!':  // negative thin space
        case '(':  // math delimiters \( \) \[ \], like '$'
        case ')':
        case '[':
        case ']':
          return after;
        case '%':
          emit('%');
          return after;
        case ',':
          // "10\,000": a thin space as thousands separator.
          if (!(ends_with_digit() && three_digit_group_at(in_, after))) emit(' ');
          return after;
        case ';':
        case ':':
        case '>':
        case ' ':
          emit(' ');
          return after;
        default:
          if (is_space(next)) {
            emit(' ');
            return after;
          }
          // A backslash before a UTF-8 character ("\°") escapes nothing; dropping it keeps it from
          // pairing with whatever follows a removed character.
          if ((static_cast<unsigned char>(next) & 0x80) != 0) return i + 1;
          emit('\\');
          emit(next);
          return after;
      }
    }
    std::size_t j = i + 1;
    while (j < n && is_letter(in_[j])) ++j;
    const std::string_view name = in_.substr(i + 1, j - i - 1);
    const CommandRule* rule = find_command_rule(name);
    if (rule == nullptr) {
      emit_command(in_.substr(i, j - i));
      return j;
    }
    switch (rule->kind) {
      case kDrop:
        return j;
      case kDelimiter: {
        std::size_t k = j;
        while (k < n && in_[k] == ' ') ++k;
        return (k < n && in_[k] == '.') ? k + 1 : j;
      }
      case kSpace:
        emit(' ');
        return j;
      case kReplace:
        if (rule->replacement.front() == '\\') {
          emit_command(rule->replacement);
        } else {
          emit_text(rule->replacement);
        }
        return j;
      case kUnwrap: {
        std::size_t k = j;
        while (k < n && is_space(in_[k])) ++k;
        if (k < n && in_[k] == '{') {
          push_group(true);
          text_begin_ = out_.size();
          text_end_ = kNone;
          return k + 1;
        }
        return j;
      }
      case kDegree:
        note_degree();
        return j;
    }
    return j;
  }

  // End of "^\circ" or "^{\circ}" (spaces allowed inside) starting at in_[i] == '^'; kNone if none.
  std::size_t degree_mark_end(std::size_t i) const {
    const std::size_t n = in_.size();
    std::size_t k = i + 1;
    const auto skip_spaces = [&] {
      while (k < n && in_[k] == ' ') ++k;
    };
    const auto circ_at = [&] {
      return in_.substr(k, 5) == "\\circ" && (k + 5 >= n || !is_letter(in_[k + 5]));
    };
    skip_spaces();
    if (circ_at()) return k + 5;
    if (k < n && in_[k] == '{') {
      ++k;
      skip_spaces();
      if (!circ_at()) return kNone;
      k += 5;
      skip_spaces();
      if (k < n && in_[k] == '}') return k + 1;
    }
    return kNone;
  }

  // Remembers where the quantity before a removed degree mark ends. Spaces before the mark stay in
  // out_: they may separate a command name from a letter after the mark ("\le °ft").
  void note_degree() {
    degree_end_ = out_.size();
    while (degree_end_ > 0 && out_[degree_end_ - 1] == ' ') --degree_end_;
  }

  // Braces: a bit per nesting level says whether its closing brace is dropped (an unwrapped group).
  // Beyond 64 levels every group is kept, which only matters for absurd inputs.
  void push_group(bool drop) {
    if (depth_ < 64 && drop) drop_bits_ |= (std::uint64_t{1} << depth_);
    if (depth_ < 64 && !drop) drop_bits_ &= ~(std::uint64_t{1} << depth_);
    ++depth_;
  }
  // Pops a level; true when its brace is dropped. An unmatched '}' is kept.
  bool pop_group() {
    if (depth_ == 0) return false;
    --depth_;
    return depth_ < 64 && ((drop_bits_ >> depth_) & 1U) != 0;
  }

  bool ends_with_digit() const { return !out_.empty() && is_digit(out_.back()); }

  // out_ ends with "{," whose brace opens a group (is not an escaped "\{").
  bool ends_with_group_comma() const {
    if (!out_.ends_with("{,")) return false;
    std::size_t backslashes = 0;
    for (std::size_t k = out_.size() - 2; k > 0 && out_[k - 1] == '\\'; --k) ++backslashes;
    return backslashes % 2 == 0;
  }

  void emit(char c) {
    if (c == ' ') {
      if (!out_.empty() && out_.back() != ' ') out_.push_back(' ');
      after_command_name_ = false;
      return;
    }
    // "\pi\!r" must not become "\pir".
    if (after_command_name_ && is_letter(c)) out_.push_back(' ');
    out_.push_back(c);
    after_command_name_ = false;
  }
  void emit_text(std::string_view text) {
    for (const char c : text) emit(c);
  }
  void emit_command(std::string_view command) {  // "\name"
    out_.append(command);
    after_command_name_ = is_letter(command.back());
  }

  // ---- the end of the answer: periods, units, percent ----

  void strip_trailing() {
    bool changed = true;
    while (changed) {
      changed = false;
      std::size_t end = out_.size();
      while (end > 0 && out_[end - 1] == ' ') --end;
      if (end >= 2 && out_[end - 1] == '\\' && out_[end - 2] == '\\') {
        end -= 2;
        changed = true;
      } else if (end >= 1 && out_[end - 1] == ',') {
        --end;
        changed = true;
      } else if (end >= 1 && out_[end - 1] == '.' && !(end >= 2 && out_[end - 2] == '.')) {
        --end;  // "5." but not an ellipsis "..."
        changed = true;
      } else if (const std::size_t unit_begin = trailing_unit_begin(end); unit_begin != kNone) {
        end = unit_begin;
        changed = true;
      } else if (const std::size_t percent = normalized_percent_end(end); percent != kNone) {
        end = percent;
        changed = true;
      }
      while (end > 0 && out_[end - 1] == ' ') --end;
      if (end != out_.size()) out_.resize(end);
    }
  }

  // The word (letters, '/', a final '.') ending at `end`, after an optional ^2 / ^{3} exponent;
  // returns [begin, word_end) through the references, false when there is none.
  bool word_before(std::size_t end, std::size_t& begin, std::size_t& word_end) const {
    std::string_view s(out_.data(), end);
    if (s.ends_with("^2") || s.ends_with("^3")) {
      s.remove_suffix(2);
    } else if (s.ends_with("^{2}") || s.ends_with("^{3}")) {
      s.remove_suffix(4);
    }
    word_end = s.size();
    std::size_t b = word_end;
    if (b > 0 && s[b - 1] == '.') --b;  // "sq."
    while (b > 0 && (is_letter(s[b - 1]) || s[b - 1] == '/')) --b;
    if (b == word_end || !is_letter(s[b])) return false;
    if (!is_letter(s[word_end - 1]) && !(s[word_end - 1] == '.' && is_letter(s[word_end - 2]))) {
      return false;  // "km/" or "/s" or a lone "."
    }
    begin = b;
    return true;
  }

  bool inside_last_text_group(std::size_t begin, std::size_t end) const {
    return text_begin_ != kNone && text_end_ != kNone && begin >= text_begin_ && end <= text_end_;
  }

  // Start of the longest trailing unit phrase ("cm", "square feet", "miles per hour") ending at
  // `end` that leaves a quantity before it, with the spaces before it; kNone when there is none.
  std::size_t trailing_unit_begin(std::size_t end) const {
    std::size_t cur = end;
    std::size_t best = kNone;
    for (bool rightmost = true;; rightmost = false) {
      std::size_t begin = 0;
      std::size_t word_end = 0;
      if (!word_before(cur, begin, word_end)) break;
      const UnitWord* unit = find_unit_word(std::string_view(out_).substr(begin, word_end - begin));
      if (unit == nullptr) break;
      if (rightmost && unit->scope == kConnector) break;  // "5 per" has no unit
      const char before = begin > 0 ? out_[begin - 1] : '\0';
      if (before == '\\') break;  // a command name such as \min, not a word
      const bool in_text = inside_last_text_group(begin, word_end);
      std::size_t prev = begin;
      while (prev > 0 && out_[prev - 1] == ' ') --prev;
      bool allowed = false;
      bool glued = false;  // the phrase cannot grow further left: it is glued to what precedes
      switch (unit->scope) {
        case kWord:
        case kConnector:
          allowed = before == ' ' || in_text;
          if (!allowed && is_digit(before) && word_end - begin >= 2) allowed = glued = true;
          if (in_text && before != ' ') glued = true;
          break;
        case kTextOnly:
          allowed = in_text;
          glued = before != ' ';
          break;
        case kAfterDegree:
          allowed = rightmost && degree_end_ != kNone && prev == degree_end_;
          glued = true;
          break;
      }
      if (!allowed) break;
      if (ends_like_quantity(prev)) best = prev;
      cur = prev;
      if (glued) break;
    }
    return best;
  }

  // Whether out_[0, end) ends like a number or an expression: a digit, a closing bracket, a
  // factorial, or a command such as \pi. Keeps "the second" and "x cm" intact.
  bool ends_like_quantity(std::size_t end) const {
    if (end == 0) return false;
    const char c = out_[end - 1];
    if (is_digit(c) || c == '}' || c == ')' || c == ']' || c == '!' || c == '|') return true;
    if (!is_letter(c)) return false;
    std::size_t b = end;
    while (b > 0 && is_letter(out_[b - 1])) --b;
    return b > 0 && out_[b - 1] == '\\';
  }

  // "50 %", "50%%" and "50 percent" end as "50%"; returns the new end, or kNone when unchanged.
  std::size_t normalized_percent_end(std::size_t end) {
    std::string_view s(out_.data(), end);
    if (s.ends_with('%')) {
      std::size_t b = end - 1;
      while (b > 0 && (out_[b - 1] == '%' || out_[b - 1] == ' ')) --b;
      if (b == 0 || b == end - 1) return kNone;
      out_[b] = '%';
      return b + 1;
    }
    if (s.size() >= 7 && equals_ignoring_case(s.substr(s.size() - 7), "percent")) {
      std::size_t b = end - 7;
      if (b > 0 && is_letter(out_[b - 1])) return kNone;
      while (b > 0 && out_[b - 1] == ' ') --b;
      if (!ends_like_quantity(b)) return kNone;
      out_[b] = '%';
      return b + 1;
    }
    return kNone;
  }

  // ---- the start of the answer: "x = " ----

  void strip_leading_variable() {
    const std::string_view s = out_;
    std::size_t k = 0;
    if (!s.empty() && is_letter(s[0])) {
      k = 1;
    } else if (s.starts_with('\\')) {
      std::size_t j = 1;
      while (j < s.size() && is_letter(s[j])) ++j;
      if (!contains(kGreekVariables, s.substr(1, j - 1))) return;
      k = j;
    } else {
      return;
    }
    if (k < s.size() && is_letter(s[k])) return;  // "AB = 5" names a length, not a variable
    if (k < s.size() && s[k] == '_') {            // x_1, x_{12}
      ++k;
      if (k < s.size() && s[k] == '{') {
        const std::size_t close = s.find('}', k);
        if (close == kNone) return;
        k = close + 1;
      } else if (k < s.size() && (is_letter(s[k]) || is_digit(s[k]))) {
        ++k;
      } else {
        return;
      }
    }
    while (k < s.size() && s[k] == ' ') ++k;
    if (k >= s.size() || s[k] != '=') return;
    ++k;
    if (k < s.size() && s[k] == '=') return;
    const std::string_view rhs = trim(s.substr(k));
    if (rhs.empty() || !names_no_variable(rhs)) return;
    out_.erase(0, static_cast<std::size_t>(rhs.data() - s.data()));
  }

  // Whether `rhs` is a value: its letters are only in known commands, or a lone i or e.
  static bool names_no_variable(std::string_view rhs) {
    std::size_t i = 0;
    while (i < rhs.size()) {
      const char c = rhs[i];
      if (c == '=') return false;  // "x = y = 5" or "x = 2 = y"
      if (c == '\\') {
        std::size_t j = i + 1;
        while (j < rhs.size() && is_letter(rhs[j])) ++j;
        if (j == i + 1) {
          i += 2;  // \{ \} \\ and the like
          continue;
        }
        if (!contains(kValueCommands, rhs.substr(i + 1, j - i - 1))) return false;
        i = j;
      } else if (is_letter(c)) {
        std::size_t j = i;
        while (j < rhs.size() && is_letter(rhs[j])) ++j;
        if (j - i != 1 || (c != 'i' && c != 'e')) return false;
        i = j;
      } else {
        ++i;
      }
    }
    return true;
  }

  // ---- "1,000,000" as a whole answer ----

  void remove_plain_thousands_separators() {
    const std::string_view s = out_;
    std::size_t i = 0;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    const std::size_t first = i;
    while (i < s.size() && is_digit(s[i])) ++i;
    if (i == first || i - first > 3) return;
    std::size_t groups = 0;
    while (i < s.size() && s[i] == ',') {
      if (!three_digit_group_at(s, i + 1)) return;
      i += 4;
      ++groups;
    }
    if (groups == 0) return;
    if (i < s.size() && s[i] == '.') {
      ++i;
      const std::size_t decimals = i;
      while (i < s.size() && is_digit(s[i])) ++i;
      if (i == decimals) return;
    }
    if (i < s.size() && s[i] == '%') ++i;
    if (i != s.size()) return;
    std::erase(out_, ',');
  }

  std::string_view in_;
  std::string out_;
  // Brace nesting of the input; bit d of drop_bits_ is set when level d's '}' is dropped.
  std::uint64_t drop_bits_ = 0;
  std::size_t depth_ = 0;
  bool after_command_name_ = false;  // out_ ends with "\name": a letter needs a space before it
  // Where the content of the last \text{}-like group lies in out_ (kNone until one closed).
  std::size_t text_begin_ = kNone;
  std::size_t text_end_ = kNone;
  std::size_t degree_end_ = kNone;  // end of the quantity before the last degree mark removed
};


}  // namespace

std::string normalize_answer(std::string_view answer) {
  return Normalizer(strip_outer_delimiters(answer)).run();
}

}  // namespace torl::rewards
