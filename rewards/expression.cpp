// Recursive-descent parser for answers. Grammar, loosest first:
//   answer   := list
//   list     := union ((',' | ';') union)*              -> kList when more than one; with both ','
//                                                          and ';', a kList of the ';' groups
//   union    := relation ('\cup' relation)*             -> kUnion
//   relation := ratio (relop ratio)*                    -> kRelation ("x \in S" reads as S,
//                                                          "x \notin [a, b]" as its complement)
//   ratio    := sum (':' sum)*                          -> a:b is a/b; a:b:c a kTuple with ':'
//   sum      := term (('+' | '-' | '\pm' | '\mp') term)*
//   term     := unary (('*' | '/' | '\cdot' | '\times' | '\div' | '\bmod' | implicit) unary)*
//   unary    := ('-' | '+') unary | power
//   power    := postfix ('^' exponent)?
//   postfix  := primary ('!' | '%')*
//   primary  := number | symbol | command | '(' / '[' items ')' / ']' | '\{' items '\}' | '|' sum '|'
//               ('(' items ')' separate items with ',' or ';'; '\{x \mid rel\}' is the relation rel)
#include "rewards/expression.hpp"

#include <algorithm>
#include <array>
#include <cctype>

namespace torl::rewards {
namespace {

ExprPtr make(ExprKind kind, std::string text = {}, std::vector<ExprPtr> args = {}) {
  auto expr = std::make_shared<Expr>();
  expr->kind = kind;
  expr->text = std::move(text);
  expr->args = std::move(args);
  return expr;
}

ExprPtr number(std::string digits) { return make(ExprKind::kNumber, std::move(digits)); }
ExprPtr symbol(std::string name) { return make(ExprKind::kSymbol, std::move(name)); }
ExprPtr function(std::string name, std::vector<ExprPtr> args) {
  return make(ExprKind::kFunction, std::move(name), std::move(args));
}
// Items between brackets (a point, an interval, a vector) or the parts of a ratio (':' both sides).
ExprPtr tuple_of(std::vector<ExprPtr> items, char open, char close) {
  auto tuple = std::make_shared<Expr>();
  tuple->kind = ExprKind::kTuple;
  tuple->args = std::move(items);
  tuple->open = open;
  tuple->close = close;
  return tuple;
}
ExprPtr negate(ExprPtr x) { return make(ExprKind::kNeg, {}, {std::move(x)}); }
ExprPtr reciprocal(ExprPtr x) { return make(ExprKind::kPow, {}, {std::move(x), number("-1")}); }

// Functions written as a command (\sin) or a plain word (sin).
constexpr std::array<std::string_view, 22> kFunctionNames = {
    "sin", "cos", "tan", "sec", "csc", "cot", "arcsin", "arccos", "arctan", "sinh", "cosh",
    "tanh", "log", "ln", "exp", "sqrt", "lg", "arcsec", "arccsc", "arccot", "det", "gcd"};

// Greek letters and other commands that name a symbol.
bool is_symbol_command(std::string_view name) {
  static constexpr std::array<std::string_view, 40> kNames = {
      "alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta", "vartheta",
      "iota", "kappa", "lambda", "mu", "nu", "xi", "rho", "sigma", "tau", "upsilon", "phi", "varphi",
      "chi", "psi", "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Sigma", "Phi", "Psi",
      "Omega", "ell", "aleph", "hbar", "imath", "jmath", "Pi"};
  return std::find(kNames.begin(), kNames.end(), name) != kNames.end();
}

class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  std::optional<ExprPtr> parse() {
    auto result = list(kEnd);
    skip_space();
    if (!result || pos_ != s_.size()) return std::nullopt;
    return result;
  }

 private:
  static constexpr char kEnd = '\0';

  // ---- characters ----
  void skip_space() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  char peek() {
    skip_space();
    return pos_ < s_.size() ? s_[pos_] : kEnd;
  }
  bool eat(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }
  // The command at the position (without the backslash), or "" if there is none.
  std::string_view peek_command() {
    skip_space();
    if (pos_ >= s_.size() || s_[pos_] != '\\') return {};
    size_t end = pos_ + 1;
    if (end < s_.size() && !std::isalpha(static_cast<unsigned char>(s_[end]))) {
      return s_.substr(pos_ + 1, 1);  // \{ \} \, \\ ...
    }
    while (end < s_.size() && std::isalpha(static_cast<unsigned char>(s_[end]))) ++end;
    return s_.substr(pos_ + 1, end - pos_ - 1);
  }
  bool eat_command(std::string_view name) {
    if (peek_command() != name) return false;
    pos_ += 1 + name.size();
    return true;
  }
  bool at_word(std::string_view word) {
    skip_space();
    if (s_.compare(pos_, word.size(), word) != 0) return false;
    const size_t end = pos_ + word.size();
    return end >= s_.size() || !std::isalpha(static_cast<unsigned char>(s_[end]));
  }
  bool eat_word(std::string_view word) {
    if (!at_word(word)) return false;
    pos_ += word.size();
    return true;
  }

  // Whether the next token closes the construct being parsed.
  bool at_close(char close) {
    const char c = peek();
    if (c == kEnd) return true;
    if (c == ')' || c == ']' || c == '}' || c == '|' || c == ',' || c == ';' || c == '&') return true;
    if (c == '\\') {
      const auto command = peek_command();
      return command == "}" || command == "\\" || command == "rfloor" || command == "rceil" ||
             command == "end" || command == "right" || command == "rangle";
    }
    return close != kEnd && c == close;
  }

  // ---- grammar ----
  std::optional<ExprPtr> list(char close) {
    // "a=1, b=3; a=2, b=5": when both separators occur, ';' separates groups of ','-separated items.
    std::vector<std::vector<ExprPtr>> groups(1);
    bool commas = false;
    while (true) {
      auto item = union_of();
      if (!item) return std::nullopt;
      groups.back().push_back(*item);
      if (close != kEnd) break;
      if (eat(',')) {
        commas = true;
      } else if (eat(';')) {
        groups.emplace_back();
      } else {
        break;
      }
    }
    const auto as_one = [](std::vector<ExprPtr> items) {
      return items.size() == 1 ? items[0] : make(ExprKind::kList, {}, std::move(items));
    };
    if (groups.size() == 1 || !commas) {
      std::vector<ExprPtr> items;
      for (auto& group : groups) items.insert(items.end(), group.begin(), group.end());
      return as_one(std::move(items));
    }
    std::vector<ExprPtr> items;
    for (auto& group : groups) items.push_back(as_one(std::move(group)));
    return make(ExprKind::kList, {}, std::move(items));
  }

  std::optional<ExprPtr> union_of() {
    auto first = relation();
    if (!first) return std::nullopt;
    std::vector<ExprPtr> parts = {*first};
    while (eat_command("cup") || eat_command("union")) {
      auto next = relation();
      if (!next) return std::nullopt;
      parts.push_back(*next);
    }
    if (parts.size() == 1) return parts[0];
    return make(ExprKind::kUnion, {}, std::move(parts));
  }

  std::optional<std::string> relation_operator() {
    const char c = peek();
    if (c == '=') return ++pos_, std::string("=");
    if (c == '<' || c == '>') {
      ++pos_;
      if (eat('=')) return std::string(1, c) + "=";
      return std::string(1, c);
    }
    if (c == '!' && pos_ + 1 < s_.size() && s_[pos_ + 1] == '=') return pos_ += 2, std::string("!=");
    if (eat_command("le") || eat_command("leq") || eat_command("leqslant")) return std::string("<=");
    if (eat_command("ge") || eat_command("geq") || eat_command("geqslant")) return std::string(">=");
    if (eat_command("lt")) return std::string("<");
    if (eat_command("gt")) return std::string(">");
    if (eat_command("ne") || eat_command("neq")) return std::string("!=");
    if (eat_command("approx") || eat_command("equiv")) return std::string("~");
    return std::nullopt;
  }

  std::optional<ExprPtr> relation() {
    auto lhs = ratio();
    if (!lhs) return std::nullopt;
    if (eat_command("in")) return union_of();  // "x \in [1, 2)" answers [1, 2)
    if (eat_command("notin")) return complement();
    std::vector<ExprPtr> args = {*lhs};
    std::string ops;
    while (auto op = relation_operator()) {
      auto rhs = ratio();
      if (!rhs) return std::nullopt;
      args.push_back(*rhs);
      ops += (ops.empty() ? "" : " ") + *op;
    }
    if (args.size() == 1) return args[0];
    return make(ExprKind::kRelation, ops, std::move(args));
  }

  // After "x \notin": an interval's complement, "[1, 2]" as (-oo, 1) \cup (2, oo).
  std::optional<ExprPtr> complement() {
    auto set = union_of();
    if (!set || (*set)->kind != ExprKind::kTuple || (*set)->args.size() != 2) return std::nullopt;
    const Expr& interval = **set;
    return make(ExprKind::kUnion, {},
                {tuple_of({negate(symbol("oo")), interval.args[0]}, '(', interval.open == '[' ? ')' : ']'),
                 tuple_of({interval.args[1], symbol("oo")}, interval.close == ']' ? '(' : '[', ')')});
  }

  // "3:8" is the number 3/8 (a ratio equals its value: 6:16 and 0.375 too); "1:2:3" is a tuple
  // of its parts, compared in order.
  std::optional<ExprPtr> ratio() {
    auto first = sum();
    if (!first) return std::nullopt;
    std::vector<ExprPtr> parts = {*first};
    while (eat(':')) {
      auto next = sum();
      if (!next) return std::nullopt;
      parts.push_back(*next);
    }
    if (parts.size() == 1) return parts[0];
    if (parts.size() == 2) return make(ExprKind::kMul, {}, {parts[0], reciprocal(parts[1])});
    return tuple_of(std::move(parts), ':', ':');
  }

  std::optional<ExprPtr> sum() {
    std::vector<ExprPtr> terms;
    std::optional<ExprPtr> plus_minus_base;
    auto first = term();
    if (!first) {
      // "\pm 3" at the start
      if (eat_command("pm") || eat_command("mp")) {
        auto rest = term();
        if (!rest) return std::nullopt;
        return make(ExprKind::kPlusMinus, {}, {number("0"), *rest});
      }
      return std::nullopt;
    }
    terms.push_back(*first);
    while (true) {
      if (eat('+')) {
        auto next = term();
        if (!next) return std::nullopt;
        terms.push_back(*next);
      } else if (peek() == '-') {
        ++pos_;
        auto next = term();
        if (!next) return std::nullopt;
        terms.push_back(negate(*next));
      } else if (eat_command("pm") || eat_command("mp")) {
        auto next = term();
        if (!next) return std::nullopt;
        ExprPtr base = terms.size() == 1 ? terms[0] : make(ExprKind::kAdd, {}, terms);
        terms = {make(ExprKind::kPlusMinus, {}, {base, *next})};
      } else {
        break;
      }
    }
    if (terms.size() == 1) return terms[0];
    return make(ExprKind::kAdd, {}, std::move(terms));
  }

  // Whether the next token can start a factor written right after another (implicit product).
  bool starts_implicit_factor() {
    const char c = peek();
    if (c == kEnd) return false;
    if (std::isdigit(static_cast<unsigned char>(c)) || std::isalpha(static_cast<unsigned char>(c)) ||
        c == '(' || c == '.') {
      return true;
    }
    if (c == '\\') {
      const auto command = peek_command();
      if (command.empty() || command == "}" || command == "\\" || command == "," || command == "cdot" ||
          command == "times" || command == "div" || command == "pm" || command == "mp" || command == "cup" ||
          command == "in" || command == "notin" || command == "end" || command == "right" || command == "rfloor" ||
          command == "rceil" || command == "rangle") {
        return false;
      }
      return !relation_command(command);
    }
    return false;
  }
  static bool relation_command(std::string_view c) {
    return c == "le" || c == "leq" || c == "leqslant" || c == "ge" || c == "geq" || c == "geqslant" ||
           c == "lt" || c == "gt" || c == "ne" || c == "neq" || c == "approx" || c == "equiv";
  }

  std::optional<ExprPtr> term() {
    auto first = unary();
    if (!first) return std::nullopt;
    std::vector<ExprPtr> factors = {*first};
    while (true) {
      if (eat('*') || eat_command("cdot") || eat_command("times")) {
        auto next = unary();
        if (!next) return std::nullopt;
        factors.push_back(*next);
      } else if (eat('/') || eat_command("div")) {
        auto next = unary();
        if (!next) return std::nullopt;
        factors.push_back(reciprocal(*next));
      } else if (eat_command("bmod") || eat_command("mod") || eat_word("mod")) {
        // "23 \bmod 7": the remainder of everything so far
        auto next = unary();
        if (!next) return std::nullopt;
        ExprPtr left = factors.size() == 1 ? factors[0] : make(ExprKind::kMul, {}, factors);
        factors = {function("mod", {left, *next})};
      } else if (starts_implicit_factor()) {
        auto next = power();
        if (!next) return std::nullopt;
        factors.push_back(*next);
      } else {
        break;
      }
    }
    if (factors.size() == 1) return factors[0];
    return make(ExprKind::kMul, {}, std::move(factors));
  }

  std::optional<ExprPtr> unary() {
    if (peek() == '-') {
      ++pos_;
      auto operand = unary();
      if (!operand) return std::nullopt;
      return negate(*operand);
    }
    if (eat('+')) return unary();
    return power();
  }

  std::optional<ExprPtr> power() {
    auto base = postfix();
    if (!base) return std::nullopt;
    if (!eat('^')) return base;
    auto exponent = script();
    if (!exponent) return std::nullopt;
    auto result = make(ExprKind::kPow, {}, {*base, *exponent});
    // a factorial or percent after the power applies to the whole power
    return apply_postfix(result);
  }

  // What follows ^ or _: a braced group, a whole number, or one symbol or command.
  std::optional<ExprPtr> script() {
    if (eat('{')) {
      auto inner = list(kEnd);
      if (!inner || !eat('}')) return std::nullopt;
      return inner;
    }
    if (peek() == '-') {
      ++pos_;
      auto operand = script();
      if (!operand) return std::nullopt;
      return negate(*operand);
    }
    if (std::isdigit(static_cast<unsigned char>(peek()))) return number_literal();
    return primary();
  }

  std::optional<ExprPtr> postfix() {
    auto base = primary();
    if (!base) return std::nullopt;
    return apply_postfix(*base);
  }

  ExprPtr apply_postfix(ExprPtr base) {
    while (true) {
      if (peek() == '!' && !(pos_ + 1 < s_.size() && s_[pos_ + 1] == '=')) {
        ++pos_;
        base = make(ExprKind::kFactorial, {}, {base});
      } else if (eat('%') || eat_command("%")) {
        base = make(ExprKind::kPercent, {}, {base});
      } else if (peek() == '\'') {
        ++pos_;  // a prime: part of the name
        if (base->kind == ExprKind::kSymbol) base = symbol(base->text + "'");
      } else {
        return base;
      }
    }
  }

  std::optional<ExprPtr> number_literal() {
    skip_space();
    const size_t start = pos_;
    while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) ++pos_;
    if (pos_ < s_.size() && s_[pos_] == '.' && pos_ + 1 < s_.size() &&
        std::isdigit(static_cast<unsigned char>(s_[pos_ + 1]))) {
      ++pos_;
      while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) ++pos_;
    } else if (pos_ < s_.size() && s_[pos_] == '.' && pos_ > start) {
      ++pos_;  // "5." is 5
    }
    if (pos_ == start) return std::nullopt;
    std::string digits(s_.substr(start, pos_ - start));
    if (digits.back() == '.') {
      digits.pop_back();
      if (auto repeating = repeating_decimal(digits, "")) return repeating;
    } else if (digits.find('.') != std::string::npos) {
      if (auto repeating = repeating_decimal(digits.substr(0, digits.find('.')), digits.substr(digits.find('.') + 1))) {
        return repeating;
      }
    }
    if (digits.find('.') == std::string::npos) {
      if (auto mixed = mixed_number(digits)) return mixed;
    }
    // Scientific notation written plainly: 1.5e-3, 2E10.
    if (pos_ + 1 < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      size_t q = pos_ + 1;
      if (q < s_.size() && (s_[q] == '-' || s_[q] == '+')) ++q;
      if (q < s_.size() && std::isdigit(static_cast<unsigned char>(s_[q]))) {
        const bool negative = s_[pos_ + 1] == '-';
        pos_ = q;
        const size_t exp_start = pos_;
        while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) ++pos_;
        ExprPtr exponent = number(std::string(s_.substr(exp_start, pos_ - exp_start)));
        if (negative) exponent = negate(exponent);
        return make(ExprKind::kMul, {}, {number(digits), make(ExprKind::kPow, {}, {number("10"), exponent})});
      }
    }
    return number(digits);
  }

  // 0.1\overline{6}: the digits under the bar repeat forever. `whole` and `fixed` are the digits
  // before and after the point; nullopt (nothing consumed) when no \overline follows.
  std::optional<ExprPtr> repeating_decimal(const std::string& whole, const std::string& fixed) {
    const size_t save = pos_;
    if (!eat_command("overline") && !eat_command("bar")) return std::nullopt;
    if (!eat('{')) {
      pos_ = save;
      return std::nullopt;
    }
    const size_t start = pos_;
    while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) ++pos_;
    const std::string repeat(s_.substr(start, pos_ - start));
    if (repeat.empty() || !eat('}')) {
      pos_ = save;
      return std::nullopt;
    }
    // value = whole.fixed + repeat / (10^|fixed| * (10^|repeat| - 1))
    const std::string head = (whole.empty() ? "0" : whole) + "." + fixed;
    ExprPtr scale = make(ExprKind::kMul, {}, {make(ExprKind::kPow, {}, {number("10"), number(std::to_string(fixed.size()))}),
                                             make(ExprKind::kAdd, {}, {make(ExprKind::kPow, {}, {number("10"), number(std::to_string(repeat.size()))}),
                                                                       number("-1")})});
    return make(ExprKind::kAdd, {}, {number(fixed.empty() ? (whole.empty() ? "0" : whole) : head),
                                     make(ExprKind::kMul, {}, {number(repeat), reciprocal(scale)})});
  }

  // 3\frac{1}{2}, 3 \frac12 and "3 1/2": an integer written before a fraction of integers is a mixed
  // number, their sum. nullopt (nothing consumed) otherwise.
  std::optional<ExprPtr> mixed_number(const std::string& whole) {
    const size_t save = pos_;
    const bool spaced = pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]));
    auto read_integer = [&]() -> std::optional<std::string> {
      skip_space();
      const size_t start = pos_;
      while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) ++pos_;
      if (pos_ == start) return std::nullopt;
      return std::string(s_.substr(start, pos_ - start));
    };
    auto braced_or_digit = [&]() -> std::optional<std::string> {
      skip_space();
      if (eat('{')) {
        auto digits = read_integer();
        if (!digits || !eat('}')) return std::nullopt;
        return digits;
      }
      if (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) return std::string(1, s_[pos_++]);
      return std::nullopt;
    };
    std::optional<std::string> top, bottom;
    const auto command = peek_command();
    if (command == "frac" || command == "dfrac" || command == "tfrac") {
      pos_ += 1 + command.size();
      top = braced_or_digit();
      if (top) bottom = braced_or_digit();
    } else if (spaced) {
      top = read_integer();
      if (top && peek() == '/') {
        ++pos_;
        bottom = read_integer();
      } else {
        top.reset();
      }
    }
    if (!top || !bottom || (pos_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '^'))) {
      pos_ = save;
      return std::nullopt;
    }
    return make(ExprKind::kAdd, {}, {number(whole), make(ExprKind::kMul, {}, {number(*top), reciprocal(number(*bottom))})});
  }

  // A braced argument {..} or a single character/command, as in \frac12 or \sqrt2.
  std::optional<ExprPtr> argument() {
    if (eat('{')) {
      auto inner = list(kEnd);
      if (!inner || !eat('}')) return std::nullopt;
      return inner;
    }
    skip_space();
    if (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) {
      return number(std::string(1, s_[pos_++]));
    }
    return primary();
  }

  // Items between brackets, up to the closing bracket; the bracket kinds are kept.
  std::optional<ExprPtr> bracketed(char open) {
    std::vector<ExprPtr> items;
    if (peek() != ')' && peek() != ']') {
      do {
        auto item = union_of();
        if (!item) return std::nullopt;
        items.push_back(*item);
      } while (eat(',') || eat(';'));  // (1; 2): coordinates separated as in many locales
    }
    char close;
    if (eat(')')) {
      close = ')';
    } else if (eat(']')) {
      close = ']';
    } else {
      return std::nullopt;
    }
    if (items.size() == 1 && open == '(' && close == ')') return items[0];  // grouping
    if (items.size() == 1 && open == '[' && close == ']') return items[0];
    return tuple_of(std::move(items), open, close);
  }

  // "\{x \mid -2 < x < 2\}", "\{x | x > 0\}", "\{x \in \mathbb{R} : x \ge 1\}": the set the condition
  // describes, returned as the condition itself; nullopt (nothing consumed) if this is no set-builder.
  std::optional<ExprPtr> set_builder() {
    const size_t save = pos_;
    skip_space();
    const bool letter = pos_ < s_.size() && std::isalpha(static_cast<unsigned char>(s_[pos_]));
    if (letter) {
      ++pos_;
      if (eat_command("in")) {
        auto domain = primary();  // \mathbb{R} and the like: the condition says what matters
        if (!domain) return pos_ = save, std::nullopt;
      }
      if (eat('|') || eat(':') || eat_command("mid")) {
        auto condition = list(kEnd);
        if (condition && eat_command("}")) return condition;
      }
    }
    pos_ = save;
    return std::nullopt;
  }

  std::optional<ExprPtr> set_items() {  // after "\{"
    if (auto described = set_builder()) return described;
    std::vector<ExprPtr> items;
    if (peek_command() != "}") {
      do {
        auto item = union_of();
        if (!item) return std::nullopt;
        items.push_back(*item);
      } while (eat(',') || eat(';'));
    }
    if (!eat_command("}")) return std::nullopt;
    return make(ExprKind::kSet, {}, std::move(items));
  }

  std::optional<ExprPtr> matrix(std::string_view environment) {  // after "\begin{ENV}"
    std::vector<std::vector<ExprPtr>> rows(1);
    while (true) {
      if (eat_command("end")) {
        if (!eat('{')) return std::nullopt;
        const size_t close = s_.find('}', pos_);
        if (close == std::string_view::npos || s_.substr(pos_, close - pos_) != environment) return std::nullopt;
        pos_ = close + 1;
        break;
      }
      auto cell = sum();
      if (!cell) return std::nullopt;
      rows.back().push_back(*cell);
      if (eat('&')) continue;
      if (eat_command("\\")) {
        if (peek_command() != "end") rows.emplace_back();
        continue;
      }
      if (peek_command() != "end") return std::nullopt;
    }
    const size_t cols = rows[0].size();
    auto result = std::make_shared<Expr>();
    result->kind = ExprKind::kMatrix;
    for (const auto& row : rows) {
      if (row.size() != cols) return std::nullopt;
      result->args.insert(result->args.end(), row.begin(), row.end());
    }
    result->rows = rows.size();
    result->cols = cols;
    return result;
  }

  bool at_function() {
    if (peek() == '(') return true;
    const auto command = peek_command();
    for (const auto& name : kFunctionNames) {
      if (command == name) return true;
      if (command.empty() && at_word(name)) return true;
    }
    return false;
  }

  // A function applied to what follows: \sin x, \sin(x), \sin^2 x, \log_2 8, sqrt(2).
  std::optional<ExprPtr> apply_function(std::string name) {
    if (name == "lg") name = "log10";
    std::optional<ExprPtr> base_of_log;
    std::optional<ExprPtr> power_of;
    if (eat('_')) {
      base_of_log = script();
      if (!base_of_log) return std::nullopt;
    }
    if (eat('^')) {
      power_of = script();
      if (!power_of) return std::nullopt;
    }
    std::optional<ExprPtr> arg;
    if (name == "sqrt") {
      arg = argument();
    } else if (peek() == '(') {
      ++pos_;
      arg = list(kEnd);
      if (arg && !eat(')')) return std::nullopt;
    } else {
      // "\cos 2x" is cos(2x): the argument runs over implicit factors, up to an operator or the
      // next function ("\sin x \cos x" is a product of two).
      arg = power();
      while (arg && starts_implicit_factor() && !at_function()) {
        auto next = power();
        if (!next) return std::nullopt;
        arg = make(ExprKind::kMul, {}, {*arg, *next});
      }
    }
    if (!arg) return std::nullopt;
    ExprPtr result = base_of_log ? function("logb", {*arg, *base_of_log}) : function(name, {*arg});
    if (power_of) {
      // \sin^{-1} x is arcsin x
      const bool minus_one = (*power_of)->kind == ExprKind::kNeg &&
                             (*power_of)->args[0]->kind == ExprKind::kNumber && (*power_of)->args[0]->text == "1";
      if (minus_one && (name == "sin" || name == "cos" || name == "tan")) {
        return function("arc" + name, {*arg});
      }
      result = make(ExprKind::kPow, {}, {result, *power_of});
    }
    return result;
  }

  std::optional<ExprPtr> command_primary() {
    const std::string name(peek_command());
    if (name.empty()) return std::nullopt;
    if (name == "{") {
      pos_ += 2;
      return set_items();
    }
    if (name == "frac" || name == "dfrac" || name == "tfrac" || name == "cfrac") {
      pos_ += 1 + name.size();
      auto top = argument();
      if (!top) return std::nullopt;
      auto bottom = argument();
      if (!bottom) return std::nullopt;
      return make(ExprKind::kMul, {}, {*top, reciprocal(*bottom)});
    }
    if (name == "sqrt") {
      pos_ += 1 + name.size();
      std::optional<ExprPtr> index;
      if (eat('[')) {
        index = sum();
        if (!index || !eat(']')) return std::nullopt;
      }
      auto radicand = argument();
      if (!radicand) return std::nullopt;
      if (index) return function("root", {*radicand, *index});
      return function("sqrt", {*radicand});
    }
    if (name == "binom" || name == "dbinom" || name == "tbinom") {
      pos_ += 1 + name.size();
      auto n = argument();
      if (!n) return std::nullopt;
      auto k = argument();
      if (!k) return std::nullopt;
      return function("binomial", {*n, *k});
    }
    if (name == "lfloor" || name == "lceil") {
      pos_ += 1 + name.size();
      auto inner = sum();
      if (!inner) return std::nullopt;
      if (!eat_command(name == "lfloor" ? "rfloor" : "rceil")) return std::nullopt;
      return function(name == "lfloor" ? "floor" : "ceil", {*inner});
    }
    if (name == "begin") {
      pos_ += 6;
      if (!eat('{')) return std::nullopt;
      const size_t close = s_.find('}', pos_);
      if (close == std::string_view::npos) return std::nullopt;
      const std::string environment(s_.substr(pos_, close - pos_));
      pos_ = close + 1;
      if (environment.find("matrix") == std::string::npos && environment != "array") return std::nullopt;
      if (environment == "array" && eat('{')) {  // column spec
        const size_t spec_end = s_.find('}', pos_);
        if (spec_end == std::string_view::npos) return std::nullopt;
        pos_ = spec_end + 1;
      }
      return matrix(environment);
    }
    for (const auto& function_name : kFunctionNames) {
      if (name == function_name) {
        pos_ += 1 + name.size();
        return apply_function(name);
      }
    }
    if (name == "operatorname" || name == "mathrm" || name == "text" || name == "mathbf") {
      pos_ += 1 + name.size();
      if (!eat('{')) return std::nullopt;
      const size_t close = s_.find('}', pos_);
      if (close == std::string_view::npos) return std::nullopt;
      std::string inner(s_.substr(pos_, close - pos_));
      pos_ = close + 1;
      if (std::find(kFunctionNames.begin(), kFunctionNames.end(), inner) != kFunctionNames.end()) {
        return apply_function(inner);
      }
      return symbol(inner);
    }
    if (name == "langle") {  // a vector <1, 2, 3> reads as the tuple (1, 2, 3)
      pos_ += 1 + name.size();
      std::vector<ExprPtr> items;
      do {
        auto item = sum();
        if (!item) return std::nullopt;
        items.push_back(*item);
      } while (eat(','));
      if (!eat_command("rangle")) return std::nullopt;
      return tuple_of(std::move(items), '(', ')');
    }
    if (name == "mathbb") {  // \mathbb{R}: the real line
      const size_t save = pos_;
      pos_ += 1 + name.size();
      if (eat('{') && eat('R') && eat('}')) {
        return tuple_of({negate(symbol("oo")), symbol("oo")}, '(', ')');
      }
      pos_ = save;
      return std::nullopt;
    }
    if (name == "overline" || name == "vec" || name == "hat" || name == "bar" || name == "overrightarrow") {
      // \overline{AB}, \vec{v}: a name (a repeating decimal's bar is read with its digits)
      pos_ += 1 + name.size();
      if (!eat('{')) return std::nullopt;
      const size_t close = s_.find('}', pos_);
      if (close == std::string_view::npos || close == pos_) return std::nullopt;
      const std::string inner(s_.substr(pos_, close - pos_));
      pos_ = close + 1;
      return symbol(name + "{" + inner + "}");
    }
    if (name == "angle" || name == "measuredangle") {  // \angle ABC names an angle
      pos_ += 1 + name.size();
      skip_space();
      const size_t start = pos_;
      while (pos_ < s_.size() && std::isalpha(static_cast<unsigned char>(s_[pos_]))) ++pos_;
      if (pos_ == start) return std::nullopt;
      return symbol("angle " + std::string(s_.substr(start, pos_ - start)));
    }
    ExprPtr value;
    if (name == "pi") {
      value = symbol("pi");
    } else if (name == "infty" || name == "infinity") {
      value = symbol("oo");
    } else if (name == "emptyset" || name == "varnothing") {
      value = make(ExprKind::kSet);
    } else if (name == "e" || name == "i") {
      value = symbol(name);
    } else if (is_symbol_command(name)) {
      value = symbol("\\" + name);
    } else {
      return std::nullopt;  // not consumed: an operator (\pm) or a command we do not understand
    }
    pos_ += 1 + name.size();
    return value->kind == ExprKind::kSymbol && value->text.front() == '\\' ? with_subscript(value) : value;
  }

  ExprPtr with_subscript(ExprPtr symbol_expr) {
    if (peek() != '_') return symbol_expr;
    const size_t save = pos_;
    ++pos_;
    std::string subscript;
    if (eat('{')) {
      const size_t close = s_.find('}', pos_);
      if (close == std::string_view::npos) {
        pos_ = save;
        return symbol_expr;
      }
      subscript = std::string(s_.substr(pos_, close - pos_));
      pos_ = close + 1;
    } else {
      skip_space();
      if (pos_ >= s_.size()) {
        pos_ = save;
        return symbol_expr;
      }
      subscript = std::string(1, s_[pos_++]);
    }
    subscript.erase(std::remove(subscript.begin(), subscript.end(), ' '), subscript.end());
    return symbol(symbol_expr->text + "_" + subscript);
  }

  std::optional<ExprPtr> primary() {
    // Every level of brackets, braces or commands passes through here: bound the recursion so that
    // a pathological answer ends as "not parsed" instead of overflowing the stack.
    if (++depth_ > kMaxDepth) return std::nullopt;
    auto result = primary_unbounded();
    --depth_;
    return result;
  }

  std::optional<ExprPtr> primary_unbounded() {
    const char c = peek();
    if (c == kEnd) return std::nullopt;
    if (std::isdigit(static_cast<unsigned char>(c)) || (c == '.' && pos_ + 1 < s_.size() &&
                                                        std::isdigit(static_cast<unsigned char>(s_[pos_ + 1])))) {
      if (c == '.') {  // ".5"
        ++pos_;
        auto rest = number_literal();
        if (!rest) return std::nullopt;
        return number("0." + (*rest)->text);
      }
      return number_literal();
    }
    if (c == '(' || c == '[') {
      ++pos_;
      return bracketed(c);
    }
    if (c == '{') {  // a LaTeX group
      ++pos_;
      auto inner = list(kEnd);
      if (!inner || !eat('}')) return std::nullopt;
      return inner;
    }
    if (c == '|') {
      ++pos_;
      auto inner = sum();
      if (!inner || !eat('|')) return std::nullopt;
      return function("abs", {*inner});
    }
    if (c == '\\') return command_primary();
    if (std::isalpha(static_cast<unsigned char>(c))) return word();
    return std::nullopt;
  }

  // Letters: a function name, pi, infinity, or a single-letter symbol (the next letter, if any, is
  // another factor: "xy" is x*y).
  std::optional<ExprPtr> word() {
    for (const auto& function_name : kFunctionNames) {
      if (at_word(function_name) || (s_.compare(pos_, function_name.size(), function_name) == 0 &&
                                     pos_ + function_name.size() < s_.size() && s_[pos_ + function_name.size()] == '(')) {
        pos_ += function_name.size();
        return apply_function(std::string(function_name));
      }
    }
    for (const char* infinity : {"infinity", "infty", "inf", "oo"}) {
      if (at_word(infinity)) {
        pos_ += std::string_view(infinity).size();
        return symbol("oo");
      }
    }
    if (at_word("pi")) {
      pos_ += 2;
      return symbol("pi");
    }
    const char letter = s_[pos_++];
    // f(x), g(t), P(2), I(0): a function applied, not a product, when the name is f, g, h or a
    // capital and "(" follows at once.
    if (pos_ < s_.size() && s_[pos_] == '(' &&
        (letter == 'f' || letter == 'g' || letter == 'h' || std::isupper(static_cast<unsigned char>(letter)))) {
      ++pos_;
      std::vector<ExprPtr> args;
      do {
        auto arg = union_of();
        if (!arg) return std::nullopt;
        args.push_back(*arg);
      } while (eat(','));
      if (!eat(')')) return std::nullopt;
      return function(std::string("applied:") + letter, std::move(args));
    }
    return with_subscript(symbol(std::string(1, letter)));
  }

  static constexpr int kMaxDepth = 200;

  std::string_view s_;
  size_t pos_ = 0;
  int depth_ = 0;
};

void render(const Expr& e, std::string& out) {
  static constexpr std::array<const char*, 16> kNames = {
      "num", "sym", "add", "mul", "pow", "neg", "fn", "fact", "percent", "pm",
      "rel", "tuple", "set", "list", "union", "matrix"};
  if (e.kind == ExprKind::kNumber || e.kind == ExprKind::kSymbol) {
    out += e.text;
    return;
  }
  out += "(";
  out += kNames[static_cast<size_t>(e.kind)];
  if (!e.text.empty()) out += ":" + e.text;
  if (e.kind == ExprKind::kTuple) out += std::string(":") + e.open + e.close;
  for (const auto& arg : e.args) {
    out += " ";
    if (arg) render(*arg, out);
  }
  out += ")";
}

}  // namespace

std::optional<ExprPtr> parse_answer(std::string_view text) {
  constexpr size_t kMaxLength = 4000;  // a final answer, not an essay: longer ones compare as text
  if (text.empty() || text.size() > kMaxLength) return std::nullopt;
  return Parser(text).parse();
}

std::string to_string(const Expr& expr) {
  std::string out;
  render(expr, out);
  return out;
}

}  // namespace torl::rewards
