// Equivalence of parsed answers. Scalars are compared exactly in rational arithmetic when they are
// rational (integers exactly; other numbers also within relative 1e-6), with symbols by testing the
// identity at random rational points (exact for polynomial and rational expressions), and otherwise
// numerically in complex long double at random points. Structures compare part by part.
#include "rewards/grader.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <complex>
#include <functional>
#include <map>
#include <random>
#include <set>

#include <boost/multiprecision/cpp_int.hpp>

#include "rewards/answer.hpp"
#include "rewards/expression.hpp"

namespace torl::rewards {
namespace {

using Rational = boost::multiprecision::cpp_rational;
using BigInt = boost::multiprecision::cpp_int;
using Complex = std::complex<long double>;

constexpr long double kRelativeTolerance = 1e-6L;
constexpr size_t kMaxExactBits = 120000;  // past this (about 36,000 digits), exact arithmetic stops

// ---- symbols ----

bool is_constant_symbol(const std::string& name) {
  return name == "pi" || name == "e" || name == "i" || name == "oo";
}

void collect_symbols(const Expr& e, std::set<std::string>& out) {
  if (e.kind == ExprKind::kSymbol && !is_constant_symbol(e.text)) out.insert(e.text);
  for (const auto& arg : e.args) {
    if (arg) collect_symbols(*arg, out);
  }
}

// ---- exact evaluation ----

using RationalEnv = std::map<std::string, Rational>;

// Decimal digits as an integer (BigInt's string constructor would read a leading 0 as octal).
BigInt parse_digits(std::string_view digits) {
  const size_t first = digits.find_first_not_of('0');
  if (first == std::string_view::npos) return 0;
  return BigInt(std::string(digits.substr(first)));
}

Rational parse_decimal(const std::string& digits) {
  const auto dot = digits.find('.');
  if (dot == std::string::npos) return Rational(parse_digits(digits));
  const std::string fraction = digits.substr(dot + 1);
  BigInt scale = 1;
  for (size_t i = 0; i < fraction.size(); ++i) scale *= 10;
  return Rational(parse_digits(digits.substr(0, dot) + fraction), scale);
}

bool too_big(const Rational& r) {
  return msb(abs(numerator(r)) + 1) + msb(denominator(r)) > kMaxExactBits;
}

// The exact n-th root of a non-negative integer, if it is one.
std::optional<BigInt> integer_root(const BigInt& value, unsigned n) {
  if (value < 0) return std::nullopt;
  if (value < 2) return value;
  const long double approx = std::pow(static_cast<long double>(value), 1.0L / n);
  if (!std::isfinite(approx)) return std::nullopt;
  BigInt guess(std::llround(approx));
  for (BigInt candidate = guess > 2 ? guess - 2 : BigInt(0); candidate <= guess + 2; ++candidate) {
    if (pow(candidate, n) == value) return candidate;
  }
  return std::nullopt;
}

std::optional<Rational> rational_root(const Rational& value, unsigned n) {
  if (value < 0) {
    if (n % 2 == 0) return std::nullopt;
    auto root = rational_root(-value, n);
    if (!root) return std::nullopt;
    return -*root;
  }
  auto top = integer_root(numerator(value), n);
  auto bottom = integer_root(denominator(value), n);
  if (!top || !bottom) return std::nullopt;
  return Rational(*top, *bottom);
}

std::optional<Rational> exact(const Expr& e, const RationalEnv& env);

std::optional<Rational> exact_power(const Rational& base, const Rational& exponent) {
  if (denominator(exponent) > 12) return std::nullopt;
  const BigInt& top = numerator(exponent);
  if (abs(top) > 40000) return std::nullopt;
  const long long p = static_cast<long long>(top);
  const unsigned q = static_cast<unsigned>(denominator(exponent));
  Rational root = base;
  if (q > 1) {
    auto r = rational_root(base, q);
    if (!r) return std::nullopt;
    root = *r;
  }
  if (root == 0 && p < 0) return std::nullopt;
  const size_t bits = msb(abs(numerator(root)) + 1) + msb(denominator(root) + 1);
  if (bits * static_cast<size_t>(std::llabs(p)) > kMaxExactBits) return std::nullopt;
  Rational result = Rational(pow(numerator(root), static_cast<unsigned>(std::llabs(p))),
                             pow(denominator(root), static_cast<unsigned>(std::llabs(p))));
  if (p < 0) result = 1 / result;
  return result;
}

std::optional<Rational> exact_function(const Expr& e, const RationalEnv& env) {
  std::vector<Rational> args;
  for (const auto& arg : e.args) {
    auto value = exact(*arg, env);
    if (!value) return std::nullopt;
    args.push_back(*value);
  }
  const std::string& name = e.text;
  if (name == "sqrt" && args.size() == 1) return rational_root(args[0], 2);
  if (name == "root" && args.size() == 2 && denominator(args[1]) == 1 && args[1] > 0 && args[1] <= 64) {
    return rational_root(args[0], static_cast<unsigned>(numerator(args[1])));
  }
  if (name == "abs") return abs(args[0]);
  if (name == "floor" || name == "ceil") {
    BigInt q = numerator(args[0]) / denominator(args[0]);  // truncates toward zero
    if (name == "floor" && args[0] < 0 && Rational(q) != args[0]) q -= 1;
    if (name == "ceil" && args[0] > 0 && Rational(q) != args[0]) q += 1;
    return Rational(q);
  }
  if (name == "binomial" && args.size() == 2 && denominator(args[0]) == 1 && denominator(args[1]) == 1) {
    const BigInt n = numerator(args[0]), k = numerator(args[1]);
    if (n < 0 || n > 5000 || k < 0) return std::nullopt;
    if (k > n) return Rational(0);
    BigInt result = 1;
    const BigInt rest = n - k;
    const long long kk = static_cast<long long>(std::min(k, rest));
    for (long long j = 1; j <= kk; ++j) result = result * (n - kk + j) / j;
    return Rational(result);
  }
  return std::nullopt;  // transcendental or unknown: numeric evaluation decides
}

std::optional<Rational> exact(const Expr& e, const RationalEnv& env) {
  switch (e.kind) {
    case ExprKind::kNumber: return parse_decimal(e.text);
    case ExprKind::kSymbol: {
      auto it = env.find(e.text);
      if (it == env.end()) return std::nullopt;
      return it->second;
    }
    case ExprKind::kNeg: {
      auto value = exact(*e.args[0], env);
      if (!value) return std::nullopt;
      return -*value;
    }
    case ExprKind::kAdd:
    case ExprKind::kMul: {
      Rational total = e.kind == ExprKind::kAdd ? 0 : 1;
      for (const auto& arg : e.args) {
        auto value = exact(*arg, env);
        if (!value) return std::nullopt;
        if (e.kind == ExprKind::kAdd) {
          total += *value;
        } else {
          total *= *value;
        }
        if (too_big(total)) return std::nullopt;
      }
      return total;
    }
    case ExprKind::kPow: {
      auto base = exact(*e.args[0], env);
      if (!base) return std::nullopt;
      auto exponent = exact(*e.args[1], env);
      if (!exponent) return std::nullopt;
      return exact_power(*base, *exponent);
    }
    case ExprKind::kFactorial: {
      auto value = exact(*e.args[0], env);
      if (!value || denominator(*value) != 1 || *value < 0 || *value > 3000) return std::nullopt;
      BigInt result = 1;
      for (long long k = 2; k <= static_cast<long long>(numerator(*value)); ++k) result *= k;
      return Rational(result);
    }
    case ExprKind::kFunction: return exact_function(e, env);
    case ExprKind::kPercent: {
      auto value = exact(*e.args[0], env);
      if (!value) return std::nullopt;
      return *value / 100;
    }
    default: return std::nullopt;
  }
}

// ---- numeric evaluation ----

using ComplexEnv = std::map<std::string, Complex>;

long double to_long_double(const Rational& r) {
  return static_cast<long double>(numerator(r)) / static_cast<long double>(denominator(r));
}

std::optional<Complex> numeric(const Expr& e, const ComplexEnv& env);

std::optional<Complex> numeric_function(const Expr& e, const ComplexEnv& env) {
  std::vector<Complex> a;
  for (const auto& arg : e.args) {
    auto value = numeric(*arg, env);
    if (!value) return std::nullopt;
    a.push_back(*value);
  }
  const std::string& f = e.text;
  const Complex x = a.empty() ? Complex() : a[0];
  if (f == "sin") return std::sin(x);
  if (f == "cos") return std::cos(x);
  if (f == "tan") return std::tan(x);
  if (f == "sec") return 1.0L / std::cos(x);
  if (f == "csc") return 1.0L / std::sin(x);
  if (f == "cot") return 1.0L / std::tan(x);
  if (f == "arcsin") return std::asin(x);
  if (f == "arccos") return std::acos(x);
  if (f == "arctan") return std::atan(x);
  if (f == "arcsec") return std::acos(1.0L / x);
  if (f == "arccsc") return std::asin(1.0L / x);
  if (f == "arccot") return std::atan(1.0L / x);
  if (f == "sinh") return std::sinh(x);
  if (f == "cosh") return std::cosh(x);
  if (f == "tanh") return std::tanh(x);
  if (f == "log" || f == "ln") return std::log(x);
  if (f == "log10") return std::log10(x);
  if (f == "logb" && a.size() == 2) return std::log(x) / std::log(a[1]);
  if (f == "exp") return std::exp(x);
  if (f == "sqrt") return std::sqrt(x);
  if (f == "root" && a.size() == 2) {
    // real odd roots of negative numbers, as school mathematics reads them
    const long double n = a[1].real();
    if (x.imag() == 0 && x.real() < 0 && std::fmod(std::fabs(n), 2.0L) == 1.0L) {
      return Complex(-std::pow(-x.real(), 1.0L / n), 0);
    }
    return std::pow(x, 1.0L / a[1]);
  }
  if (f == "abs") return Complex(std::abs(x), 0);
  if (f == "floor") return Complex(std::floor(x.real()), 0);
  if (f == "ceil") return Complex(std::ceil(x.real()), 0);
  if (f.rfind("applied:", 0) == 0) {
    // An unknown function f(x): any fixed, smooth, injective-looking stand-in will do, as long as
    // f(0) and -f(0), or f(1) and f(2), come out different.
    Complex value(0.5L + static_cast<unsigned char>(f.back()) / 97.0L, 0);
    for (size_t k = 0; k < a.size(); ++k) value += std::exp(Complex(0.3L + 0.11L * k, 0) * a[k]) * (1.0L + k);
    return value;
  }
  if (f == "binomial" && a.size() == 2) {
    const long double n = x.real(), k = a[1].real();
    return Complex(std::exp(std::lgamma(n + 1) - std::lgamma(k + 1) - std::lgamma(n - k + 1)), 0);
  }
  return std::nullopt;
}

std::optional<Complex> numeric(const Expr& e, const ComplexEnv& env) {
  switch (e.kind) {
    case ExprKind::kNumber: return Complex(to_long_double(parse_decimal(e.text)), 0);
    case ExprKind::kSymbol: {
      if (e.text == "pi") return Complex(3.14159265358979323846264338327950288L, 0);
      if (e.text == "e") return Complex(2.71828182845904523536028747135266250L, 0);
      if (e.text == "i") return Complex(0, 1);
      if (e.text == "oo") return Complex(INFINITY, 0);
      auto it = env.find(e.text);
      if (it == env.end()) return std::nullopt;
      return it->second;
    }
    case ExprKind::kNeg: {
      auto value = numeric(*e.args[0], env);
      if (!value) return std::nullopt;
      // -(4 + 0i) must stay on the positive side of sqrt's branch cut: no negative zero.
      return Complex(-value->real(), value->imag() == 0 ? 0.0L : -value->imag());
    }
    case ExprKind::kAdd:
    case ExprKind::kMul: {
      Complex total = e.kind == ExprKind::kAdd ? Complex(0) : Complex(1);
      for (const auto& arg : e.args) {
        auto value = numeric(*arg, env);
        if (!value) return std::nullopt;
        if (e.kind == ExprKind::kAdd) {
          total += *value;
        } else {
          total *= *value;
        }
      }
      return total;
    }
    case ExprKind::kPow: {
      auto base = numeric(*e.args[0], env);
      auto exponent = numeric(*e.args[1], env);
      if (!base || !exponent) return std::nullopt;
      if (base->imag() == 0 && exponent->imag() == 0) {
        const long double b = base->real(), p = exponent->real();
        if (b >= 0 || p == std::round(p)) return Complex(std::pow(b, p), 0);
        // a negative base to a fractional power with an odd denominator: the real root
        for (int q = 3; q <= 15; q += 2) {
          const long double top = p * q;
          if (std::fabs(top - std::round(top)) < 1e-12L) {
            const long double magnitude = std::pow(-b, p);
            return Complex(static_cast<long long>(std::round(top)) % 2 == 0 ? magnitude : -magnitude, 0);
          }
        }
      }
      return std::pow(*base, *exponent);
    }
    case ExprKind::kFactorial: {
      auto value = numeric(*e.args[0], env);
      if (!value) return std::nullopt;
      return Complex(std::tgamma(value->real() + 1), 0);
    }
    case ExprKind::kPercent: {
      auto value = numeric(*e.args[0], env);
      if (!value) return std::nullopt;
      return *value / 100.0L;
    }
    case ExprKind::kFunction: return numeric_function(e, env);
    default: return std::nullopt;
  }
}

bool close_enough(Complex a, Complex b) {
  if (!std::isfinite(a.real()) || !std::isfinite(b.real())) {
    return std::isinf(a.real()) && std::isinf(b.real()) && std::signbit(a.real()) == std::signbit(b.real()) &&
           std::fabs(a.imag() - b.imag()) < 1e-9L;
  }
  if (std::isnan(a.imag()) || std::isnan(b.imag())) return false;
  const long double scale = std::max(std::abs(a), std::abs(b));
  const long double difference = std::abs(a - b);
  if (std::abs(a) == 0 || std::abs(b) == 0) return difference <= 1e-12L;  // sin(pi) against 0
  return difference < kRelativeTolerance * scale;
}

// Whether r has a finite decimal expansion (its denominator has no prime factor but 2 and 5).
bool terminates(const Rational& r) {
  BigInt d = denominator(r);
  while (d % 2 == 0) d /= 2;
  while (d % 5 == 0) d /= 5;
  return d == 1;
}

// ---- scalar equivalence ----

// f(b) == c * f(a) for one constant c at every point (c fixed by the first usable point);
// `sign` > 0 requires c > 0, 0 any nonzero c, and `c_is_one` c == 1 (plain equality).
struct Proportionality {
  bool c_is_one = true;
  int sign = 0;
};

bool numerically_proportional(const Expr& a, const Expr& b, const std::set<std::string>& symbols,
                              Proportionality rule) {
  std::mt19937_64 random(0x7012ULL);  // fixed: the same answer always grades the same way
  std::uniform_real_distribution<long double> pick(0.35L, 2.35L);
  std::optional<Complex> ratio;
  int usable = 0;
  for (int attempt = 0; attempt < 24 && usable < 6; ++attempt) {
    ComplexEnv env;
    for (const auto& name : symbols) env[name] = Complex(pick(random), 0);
    auto va = numeric(a, env), vb = numeric(b, env);
    if (!va || !vb) return false;
    const bool finite_a = std::isfinite(va->real()) && std::isfinite(va->imag());
    const bool finite_b = std::isfinite(vb->real()) && std::isfinite(vb->imag());
    if (!finite_a && !finite_b) {
      if (rule.c_is_one && close_enough(*va, *vb)) ++usable;  // both +inf, say
      continue;
    }
    if (!finite_a || !finite_b) return false;
    if (rule.c_is_one) {
      if (!close_enough(*va, *vb)) return false;
      ++usable;
      continue;
    }
    if (std::abs(*va) < 1e-12L) {
      if (std::abs(*vb) > 1e-9L) return false;
      continue;
    }
    const Complex c = *vb / *va;
    if (!ratio) {
      if (std::abs(c) < 1e-12L) return false;
      if (rule.sign > 0 && !(c.real() > 0 && std::fabs(c.imag()) < 1e-9L)) return false;
      ratio = c;
    } else if (!close_enough(c, *ratio)) {
      return false;
    }
    ++usable;
  }
  return usable >= (symbols.empty() ? 1 : 3);
}

// Exact identity test at random rational points (Schwartz-Zippel): yes, no, or cannot tell.
std::optional<bool> exactly_equal(const Expr& a, const Expr& b, const std::set<std::string>& symbols) {
  std::mt19937_64 random(0x5eedULL);
  std::uniform_int_distribution<int> top(-97, 97), bottom(1, 13);
  const int points = symbols.empty() ? 1 : 4;
  for (int p = 0; p < points; ++p) {
    RationalEnv env;
    for (const auto& name : symbols) env[name] = Rational(top(random), bottom(random));
    auto va = exact(a, env), vb = exact(b, env);
    if (!va || !vb) return std::nullopt;
    if (*va == *vb) continue;
    // A number and a decimal approximation of it (1/3 and 0.3333333) agree within the relative
    // tolerance; two integers, or two terminating decimals (16386.17 and 16386.16), only exactly.
    if (symbols.empty() && !(terminates(*va) && terminates(*vb))) {
      const Rational difference = abs(*va - *vb);
      const Rational scale = std::max(Rational(abs(*va)), Rational(abs(*vb)));
      if (difference < scale * Rational(1, 1000000)) continue;
    }
    return false;
  }
  return true;
}

bool scalars_equivalent(const Expr& a, const Expr& b) {
  // The same tree is the same answer, also where it cannot be evaluated (t(0, 4]).
  if (to_string(a) == to_string(b)) return true;
  std::set<std::string> symbols;
  collect_symbols(a, symbols);
  collect_symbols(b, symbols);
  if (auto exact_result = exactly_equal(a, b, symbols)) return *exact_result;
  return numerically_proportional(a, b, symbols, {});
}

// ---- structures ----

bool equivalent(const ExprPtr& a, const ExprPtr& b);

ExprPtr sum_of(ExprPtr x, ExprPtr y) {
  auto e = std::make_shared<Expr>();
  e->kind = ExprKind::kAdd;
  e->args = {std::move(x), std::move(y)};
  return e;
}
ExprPtr negated(ExprPtr x) {
  auto e = std::make_shared<Expr>();
  e->kind = ExprKind::kNeg;
  e->args = {std::move(x)};
  return e;
}

bool contains_plus_minus(const Expr& e) {
  if (e.kind == ExprKind::kPlusMinus) return true;
  for (const auto& arg : e.args) {
    if (arg && contains_plus_minus(*arg)) return true;
  }
  return false;
}

// The readings of an expression with ± in it: 2 ± √3 is {2 + √3, 2 - √3}; (1 ± √5)/2 likewise.
std::vector<ExprPtr> plus_minus_readings(const ExprPtr& e) {
  if (!contains_plus_minus(*e)) return {e};
  if (e->kind == ExprKind::kPlusMinus) {
    std::vector<ExprPtr> out;
    for (const auto& a : plus_minus_readings(e->args[0])) {
      for (const auto& b : plus_minus_readings(e->args[1])) {
        out.push_back(sum_of(a, b));
        out.push_back(sum_of(a, negated(b)));
      }
    }
    return out;
  }
  // Expand the first argument that holds a ±; the rest is expanded recursively.
  for (size_t i = 0; i < e->args.size(); ++i) {
    if (!e->args[i] || !contains_plus_minus(*e->args[i])) continue;
    std::vector<ExprPtr> out;
    for (const auto& reading : plus_minus_readings(e->args[i])) {
      auto copy = std::make_shared<Expr>(*e);
      copy->args[i] = reading;
      for (auto& more : plus_minus_readings(copy)) out.push_back(std::move(more));
    }
    return out;
  }
  return {e};
}

// A scalar with ± as the set of its readings; collections take each item's readings as items.
ExprPtr expand_plus_minus(const ExprPtr& e) {
  auto set = std::make_shared<Expr>();
  set->kind = ExprKind::kSet;
  if (e->kind == ExprKind::kList || e->kind == ExprKind::kSet) {
    for (const auto& item : e->args) {
      for (auto& reading : plus_minus_readings(item)) set->args.push_back(std::move(reading));
    }
  } else {
    set->args = plus_minus_readings(e);
  }
  return set;
}

// A union of finite sets is one set.
ExprPtr merge_set_union(const ExprPtr& e) {
  if (e->kind != ExprKind::kUnion) return e;
  auto set = std::make_shared<Expr>();
  set->kind = ExprKind::kSet;
  for (const auto& part : e->args) {
    if (part->kind != ExprKind::kSet) return e;
    set->args.insert(set->args.end(), part->args.begin(), part->args.end());
  }
  return set;
}

bool is_collection(const Expr& e) {
  return e.kind == ExprKind::kList || e.kind == ExprKind::kSet || e.kind == ExprKind::kUnion;
}

// Every item of `a` matched to a distinct equivalent item of `b`.
bool same_items_any_order(const std::vector<ExprPtr>& a, const std::vector<ExprPtr>& b) {
  if (a.size() != b.size()) return false;
  std::vector<bool> used(b.size(), false);
  std::function<bool(size_t)> match = [&](size_t i) {
    if (i == a.size()) return true;
    for (size_t j = 0; j < b.size(); ++j) {
      if (used[j] || !equivalent(a[i], b[j])) continue;
      used[j] = true;
      if (match(i + 1)) return true;
      used[j] = false;
    }
    return false;
  };
  return match(0);
}

bool same_items_in_order(const std::vector<ExprPtr>& a, const std::vector<ExprPtr>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!equivalent(a[i], b[i])) return false;
  }
  return true;
}

// A relation with > and >= turned around, so that equal relations look alike.
struct Relation {
  std::vector<std::string> ops;
  std::vector<ExprPtr> args;
};

Relation canonical_relation(const Expr& e) {
  Relation r;
  for (size_t start = 0; start <= e.text.size();) {
    const size_t space = e.text.find(' ', start);
    r.ops.push_back(e.text.substr(start, space == std::string::npos ? std::string::npos : space - start));
    if (space == std::string::npos) break;
    start = space + 1;
  }
  r.args = e.args;
  if (!r.ops.empty() && (r.ops[0] == ">" || r.ops[0] == ">=")) {
    std::reverse(r.args.begin(), r.args.end());
    std::reverse(r.ops.begin(), r.ops.end());
    for (auto& op : r.ops) op = op == ">" ? "<" : op == ">=" ? "<=" : op;
  }
  return r;
}

bool relations_equivalent(const Expr& a, const Expr& b) {
  const Relation ra = canonical_relation(a), rb = canonical_relation(b);
  if (ra.ops != rb.ops) return false;
  if (same_items_in_order(ra.args, rb.args)) return true;
  const bool symmetric = ra.ops.size() == 1 && (ra.ops[0] == "=" || ra.ops[0] == "!=" || ra.ops[0] == "~");
  if (symmetric && ra.args.size() == 2 && equivalent(ra.args[0], rb.args[1]) && equivalent(ra.args[1], rb.args[0])) {
    return true;
  }
  if (ra.args.size() != 2 || (ra.ops[0] != "=" && ra.ops[0] != "<" && ra.ops[0] != "<=")) return false;
  // lhs - rhs of one is a constant multiple of the other's (positive for inequalities).
  const ExprPtr fa = sum_of(ra.args[0], negated(ra.args[1]));
  const ExprPtr fb = sum_of(rb.args[0], negated(rb.args[1]));
  std::set<std::string> symbols;
  collect_symbols(*fa, symbols);
  collect_symbols(*fb, symbols);
  if (symbols.empty()) return false;
  return numerically_proportional(*fa, *fb, symbols, {.c_is_one = false, .sign = ra.ops[0] == "=" ? 0 : 1});
}

// Whether a number is written in `e` (the -1 that the parser puts under a fraction bar does not count).
bool has_number(const Expr& e) {
  if (e.kind == ExprKind::kNumber) return true;
  if (e.kind == ExprKind::kPow && e.args[1]->kind == ExprKind::kNumber && e.args[1]->text == "-1") {
    return has_number(*e.args[0]);
  }
  for (const auto& arg : e.args) {
    if (arg && has_number(*arg)) return true;
  }
  return false;
}

// "x = 5", "f(x) = 2x + 1", "(p, q) = (3, 2)", "AB = 4" or "5 = x" against the bare value: the value
// given to a left side that names no number.
const Expr* assigned_value(const Expr& e) {
  if (e.kind != ExprKind::kRelation || e.text != "=" || e.args.size() != 2) return nullptr;
  std::set<std::string> symbols;
  collect_symbols(*e.args[0], symbols);
  if (!symbols.empty() && !has_number(*e.args[0])) return e.args[1].get();
  if (e.args[1]->kind == ExprKind::kSymbol && !is_constant_symbol(e.args[1]->text)) return e.args[0].get();
  return nullptr;
}

ExprPtr symbol_expr(std::string name) {
  auto e = std::make_shared<Expr>();
  e->kind = ExprKind::kSymbol;
  e->text = std::move(name);
  return e;
}

// An inequality in one variable as the interval it describes: "x > 3" is (3, oo), "1 <= x < 2" is
// [1, 2). nullopt for anything else.
std::optional<ExprPtr> relation_as_interval(const Expr& e) {
  if (e.kind != ExprKind::kRelation) return std::nullopt;
  const Relation r = canonical_relation(e);
  for (const auto& op : r.ops) {
    if (op != "<" && op != "<=") return std::nullopt;
  }
  const auto is_variable = [](const ExprPtr& x) {
    return x->kind == ExprKind::kSymbol && !is_constant_symbol(x->text);
  };
  const auto is_constant = [](const ExprPtr& x) {
    std::set<std::string> symbols;
    collect_symbols(*x, symbols);
    return symbols.empty();
  };
  auto interval = std::make_shared<Expr>();
  interval->kind = ExprKind::kTuple;
  if (r.args.size() == 2 && is_variable(r.args[0]) && is_constant(r.args[1])) {  // x < c
    interval->args = {negated(symbol_expr("oo")), r.args[1]};
    interval->open = '(';
    interval->close = r.ops[0] == "<" ? ')' : ']';
  } else if (r.args.size() == 2 && is_constant(r.args[0]) && is_variable(r.args[1])) {  // c < x
    interval->args = {r.args[0], symbol_expr("oo")};
    interval->open = r.ops[0] == "<" ? '(' : '[';
    interval->close = ')';
  } else if (r.args.size() == 3 && is_constant(r.args[0]) && is_variable(r.args[1]) && is_constant(r.args[2])) {
    interval->args = {r.args[0], r.args[2]};
    interval->open = r.ops[0] == "<" ? '(' : '[';
    interval->close = r.ops[1] == "<" ? ')' : ']';
  } else {
    return std::nullopt;
  }
  return interval;
}

bool equivalent(const ExprPtr& a, const ExprPtr& b) {
  if (a->kind == ExprKind::kTuple && b->kind == ExprKind::kRelation) {
    if (auto interval = relation_as_interval(*b)) return equivalent(a, *interval);
  }
  if (b->kind == ExprKind::kTuple && a->kind == ExprKind::kRelation) {
    if (auto interval = relation_as_interval(*a)) return equivalent(*interval, b);
  }
  const bool a_pm = contains_plus_minus(*a), b_pm = contains_plus_minus(*b);
  if (a_pm || b_pm) {
    if (a->kind == ExprKind::kTuple || b->kind == ExprKind::kTuple || a->kind == ExprKind::kRelation ||
        b->kind == ExprKind::kRelation) {
      if (a_pm && b_pm) return to_string(*a) == to_string(*b);
    } else {
      return equivalent(a_pm ? expand_plus_minus(a) : a, b_pm ? expand_plus_minus(b) : b);
    }
  }
  if (a->kind == ExprKind::kUnion || b->kind == ExprKind::kUnion) {
    const ExprPtr ma = merge_set_union(a), mb = merge_set_union(b);
    if (ma != a || mb != b) return equivalent(ma, mb);
  }

  // 50% is 50 and 0.5.
  if (a->kind == ExprKind::kPercent && b->kind != ExprKind::kPercent) {
    return equivalent(a->args[0], b) || scalars_equivalent(*a, *b);
  }
  if (b->kind == ExprKind::kPercent && a->kind != ExprKind::kPercent) {
    return equivalent(a, b->args[0]) || scalars_equivalent(*a, *b);
  }

  if (is_collection(*a) && is_collection(*b)) return same_items_any_order(a->args, b->args);
  if (a->kind == ExprKind::kTuple && b->kind == ExprKind::kTuple) {
    return a->open == b->open && a->close == b->close && same_items_in_order(a->args, b->args);
  }
  // A point written without its parentheses: "3, 4" for (3, 4).
  if (a->kind == ExprKind::kTuple && b->kind == ExprKind::kList && a->open == '(' && a->close == ')') {
    return same_items_in_order(a->args, b->args);
  }
  if (b->kind == ExprKind::kTuple && a->kind == ExprKind::kList && b->open == '(' && b->close == ')') {
    return same_items_in_order(a->args, b->args);
  }
  // A column or row vector written as a matrix against the same vector as a tuple.
  const auto vector_like = [](const Expr& m, const Expr& t) {
    return m.kind == ExprKind::kMatrix && (m.rows == 1 || m.cols == 1) && t.kind == ExprKind::kTuple && t.open == '(' &&
           t.close == ')';
  };
  if (vector_like(*a, *b) || vector_like(*b, *a)) return same_items_in_order(a->args, b->args);
  if (a->kind == ExprKind::kMatrix || b->kind == ExprKind::kMatrix) {
    return a->kind == b->kind && a->rows == b->rows && a->cols == b->cols && same_items_in_order(a->args, b->args);
  }
  if (a->kind == ExprKind::kRelation && b->kind == ExprKind::kRelation) return relations_equivalent(*a, *b);
  if (const Expr* value = assigned_value(*a); value && b->kind != ExprKind::kRelation) {
    return equivalent(std::shared_ptr<const Expr>(a, value), b);
  }
  if (const Expr* value = assigned_value(*b); value && a->kind != ExprKind::kRelation) {
    return equivalent(a, std::shared_ptr<const Expr>(b, value));
  }
  const auto structural = [](const Expr& e) {
    return e.kind == ExprKind::kTuple || e.kind == ExprKind::kRelation || is_collection(e);
  };
  if (structural(*a) || structural(*b)) {
    // A one-item collection is its item: {5} and 5.
    if (is_collection(*a) && a->args.size() == 1) return equivalent(a->args[0], b);
    if (is_collection(*b) && b->args.size() == 1) return equivalent(a, b->args[0]);
    return false;
  }
  return scalars_equivalent(*a, *b);
}

std::string without_spaces(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (!std::isspace(static_cast<unsigned char>(c))) out += c;
  }
  return out;
}

// Lower-cased, without spaces, everything else kept (a sign is never dropped): for answers in words.
std::string folded(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (!std::isspace(static_cast<unsigned char>(c))) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

// A run of four or more letters that is not a command or function name: the answer is words.
bool has_word(std::string_view text) {
  static const std::set<std::string, std::less<>> kMath = {
      "sqrt", "infty", "infinity", "arcsin", "arccos", "arctan", "arcsec", "arccsc", "arccot", "sinh",
      "cosh", "tanh", "frac", "binom"};
  for (size_t i = 0; i < text.size();) {
    if (!std::isalpha(static_cast<unsigned char>(text[i]))) {
      ++i;
      continue;
    }
    size_t end = i;
    while (end < text.size() && std::isalpha(static_cast<unsigned char>(text[end]))) ++end;
    const bool command = i > 0 && text[i - 1] == '\\';
    const std::string_view before = text.substr(0, i);
    const bool environment = before.ends_with("\\begin{") || before.ends_with("\\end{");
    if (end - i >= 4 && !command && !environment && !kMath.count(text.substr(i, end - i))) return true;
    i = end;
  }
  return false;
}

bool is_wordy(std::string_view text) {
  int letters = 0;
  for (const char c : text) {
    if (std::isalpha(static_cast<unsigned char>(c))) {
      ++letters;
    } else if (!std::isspace(static_cast<unsigned char>(c)) && c != '(' && c != ')' && c != '.' && c != ',') {
      return false;
    }
  }
  return letters >= 2;
}

// ---- preparing normalised text for the parser ----

void replace_all(std::string& text, std::string_view from, std::string_view to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
}

bool is_word_char(char c) { return std::isalpha(static_cast<unsigned char>(c)); }

// Replaces the whole word `word` (letters on neither side) by `by`.
void replace_word(std::string& text, std::string_view word, std::string_view by) {
  for (size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + 1)) {
    const bool starts = at == 0 || !is_word_char(text[at - 1]);
    const bool ends = at + word.size() >= text.size() || !is_word_char(text[at + word.size()]);
    if (starts && ends && (at == 0 || text[at - 1] != '\\')) {
      text.replace(at, word.size(), by);
      at += by.size() > 0 ? by.size() - 1 : 0;
    }
  }
}

// What normalisation leaves for the grader to read: Unicode operators, Python's **, a stray \boxed,
// "and"/"or" between answers, ordinal and counting words after a number ("5th", "8 ways"), and
// spaces as thousands separators.
std::string prepare(std::string text) {
  if (text.find("\\boxed") != std::string::npos || text.find("\\fbox") != std::string::npos) {
    if (auto inner = extract_boxed(text)) text = normalize_answer(*inner);
  }
  static const std::pair<std::string_view, std::string_view> kUnicode[] = {
      {"\u2212", "-"}, {"\u00d7", "\\times "}, {"\u00b7", "\\cdot "}, {"\u2264", "\\le "},
      {"\u2265", "\\ge "}, {"\u2260", "\\ne "}, {"\u03c0", "\\pi "}, {"\u221e", "\\infty "},
      {"\u221a", "\\sqrt"}, {"\u00b1", "\\pm "}, {"**", "^"}};
  for (const auto& [from, to] : kUnicode) replace_all(text, from, to);
  for (const char* connector : {"and", "or"}) replace_word(text, connector, ",");
  // A one-character subscript in braces is the same subscript: 1011_{2} and 1011_2.
  for (size_t at = text.find("_{"); at != std::string::npos; at = text.find("_{", at + 1)) {
    if (at + 3 < text.size() && text[at + 3] == '}') text.erase(at + 3, 1), text.erase(at + 1, 1);
  }
  replace_all(text, ",,", ",");
  replace_all(text, ", ,", ",");
  for (const char* ordinal : {"^{th}", "^{st}", "^{nd}", "^{rd}", "^th", "^st", "^nd", "^rd"}) {
    if (text.ends_with(ordinal)) text.resize(text.size() - std::string_view(ordinal).size());
  }
  // A plain number followed by words of three or more letters ("8 ways", "20 students", "0.06
  // yuan"): the words go. A letter after a number is a variable ("7.6 Z", "3 n") and stays.
  const size_t first_letter = text.find_first_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");
  if (first_letter != std::string::npos && first_letter > 0 && text[first_letter - 1] == ' ') {
    const std::string_view number_part = std::string_view(text).substr(0, first_letter);
    const std::string_view words = std::string_view(text).substr(first_letter);
    const bool plain_number = std::isdigit(static_cast<unsigned char>(number_part.front())) &&
                              number_part.find_first_not_of("0123456789., ") == std::string_view::npos;
    bool long_words = true;
    size_t run = 0;
    for (const char c : words) {
      if (is_word_char(c)) {
        ++run;
      } else if (c == ' ') {
        long_words = long_words && (run == 0 || run >= 3);
        run = 0;
      } else {
        long_words = false;
      }
    }
    long_words = long_words && run >= 3;
    if (plain_number && long_words) text.resize(first_letter);
  }
  // "1 000 000": digits in groups of three separated by spaces.
  bool spaced_thousands = text.find(' ') != std::string::npos;
  for (size_t i = 0, group = 0; i < text.size() && spaced_thousands; ++i) {
    if (std::isdigit(static_cast<unsigned char>(text[i]))) {
      ++group;
    } else if (text[i] == ' ' && group >= 1 && (group <= 3 || i == 0)) {
      group = 0;
    } else {
      spaced_thousands = false;
    }
  }
  if (spaced_thousands) text.erase(std::remove(text.begin(), text.end(), ' '), text.end());
  while (!text.empty() && (text.back() == ' ' || text.back() == ',')) text.pop_back();
  while (!text.empty() && (text.front() == ' ' || text.front() == ',')) text.erase(0, 1);
  return text;
}

// The letter of a multiple-choice answer: "A", "(A)", "(A) 5", "A)"; 0 otherwise.
char choice_letter(std::string_view text) {
  size_t i = 0;
  const bool open = i < text.size() && text[i] == '(';
  if (open) ++i;
  if (i >= text.size() || text[i] < 'A' || text[i] > 'E') return 0;
  const char letter = text[i++];
  const bool close = i < text.size() && text[i] == ')';
  if (close) ++i;
  if (i == text.size()) return letter;
  return (open && close) ? letter : 0;  // "(A) 5": the letter, with the option's text after it
}

// The parts of an answer written with \approx ("\frac{70}{9} \approx 7.78"): each may be the answer.
std::vector<std::string> approximation_parts(const std::string& text) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t at = text.find("\\approx"); ; at = text.find("\\approx", start)) {
    std::string part = text.substr(start, at == std::string::npos ? std::string::npos : at - start);
    while (!part.empty() && part.back() == ' ') part.pop_back();
    while (!part.empty() && part.front() == ' ') part.erase(0, 1);
    if (!part.empty()) parts.push_back(part);
    if (at == std::string::npos) break;
    start = at + 7;
  }
  return parts;
}

bool prepared_equivalent(const std::string& a, const std::string& b) {
  if (a == b) return !a.empty();
  if (a.empty() || b.empty()) return false;
  if (is_wordy(a) && is_wordy(b) && folded(a) == folded(b)) return true;  // "Odd" and "odd"
  const char letter_a = choice_letter(a), letter_b = choice_letter(b);
  if (letter_a && letter_b) return letter_a == letter_b;
  if (has_word(a) || has_word(b)) return folded(a) == folded(b);
  auto pa = parse_answer(a), pb = parse_answer(b);
  if (!pa || !pb) return without_spaces(a) == without_spaces(b);  // not mathematics we can read
  return equivalent(*pa, *pb);
}

}  // namespace

bool answers_equivalent(std::string_view gold, std::string_view pred) {
  const std::string a = prepare(normalize_answer(gold)), b = prepare(normalize_answer(pred));
  if (prepared_equivalent(a, b)) return true;
  // "x \approx 11", "\frac{70}{9} \approx 7.78": any part of one side may be the answer.
  if (a.find("\\approx") == std::string::npos && b.find("\\approx") == std::string::npos) return false;
  for (const auto& part_a : approximation_parts(a)) {
    for (const auto& part_b : approximation_parts(b)) {
      if (prepared_equivalent(part_a, part_b)) return true;
    }
  }
  return false;
}

Grade grade_texts(std::string_view gold_text, std::string_view pred_text) {
  Grade grade;
  grade.gold_answer = answer_from_text(gold_text);
  grade.pred_answer = answer_from_text(pred_text);
  grade.equivalent = answers_equivalent(grade.gold_answer, grade.pred_answer);
  return grade;
}

}  // namespace torl::rewards
