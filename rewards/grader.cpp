// Equivalence of parsed answers. Scalars are compared exactly in rational arithmetic when they are
// rational (integers exactly; other numbers also within relative 1e-6), with symbols by testing the
// identity at random rational points (exact for polynomial and rational expressions), and otherwise
// numerically in complex long double at random points. Structures compare part by part.
#include "rewards/grader.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <complex>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <utility>

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

// ---- the work one comparison may do ----

// Counted, not timed, so that a verdict never depends on the machine: a step is a node evaluated or
// a pair of items compared, and big-number arithmetic costs its size. About 10 ms of the slowest
// work on a 2020s core; typical answers use well under a thousand.
constexpr long kWorkBudget = 100000;
constexpr size_t kMaxReadings = 64;  // of an answer with several \pm in it

struct Work {
  long left = kWorkBudget;
  bool exhausted = false;  // the budget ran out: nothing more is decided
  bool capped = false;     // exact arithmetic refused a number too big to hold
};
thread_local Work t_work;
std::atomic<uint64_t> g_undecided{0};

// Charges `steps`; false once the budget is spent.
bool spend(long steps) {
  t_work.left -= steps;
  if (t_work.left < 0) t_work.exhausted = true;
  return !t_work.exhausted;
}

size_t bits_of(const BigInt& n) { return n == 0 ? 1 : msb(abs(n)) + 1; }
size_t bits_of(const Rational& r) { return bits_of(numerator(r)) + bits_of(denominator(r)); }

// What arithmetic whose result has `bits` bits costs, charged before it is done: multiplication is
// quadratic in the limbs, and a fraction's binary gcd (to keep lowest terms) is bits x limbs.
long cost_of(size_t bits, bool fraction) {
  const long limbs = static_cast<long>(bits / 64 + 1);
  return 1 + (fraction ? static_cast<long>(bits) * limbs / 256 : limbs * limbs / 16);
}

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
  if (msb(abs(numerator(r)) + 1) + msb(denominator(r)) <= kMaxExactBits) return false;
  t_work.capped = true;
  return true;
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
  if (base == 1) return Rational(1);
  if (abs(top) > 40000) {
    t_work.capped = true;
    return std::nullopt;
  }
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
  if (bits * static_cast<size_t>(std::llabs(p)) > kMaxExactBits) {
    t_work.capped = true;
    return std::nullopt;
  }
  if (!spend(cost_of(bits * static_cast<size_t>(std::llabs(p)), denominator(root) != 1 || p < 0))) return std::nullopt;
  const unsigned power = static_cast<unsigned>(std::llabs(p));
  // root is in lowest terms, and so is its power: no gcd
  Rational result = denominator(root) == 1 ? Rational(pow(numerator(root), power))
                                           : Rational(pow(numerator(root), power), pow(denominator(root), power));
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
  if (name == "mod" && args.size() == 2 && denominator(args[0]) == 1 && denominator(args[1]) == 1 && args[1] != 0) {
    const BigInt n = numerator(args[0]), m = abs(numerator(args[1]));
    return Rational(((n % m) + m) % m);
  }
  if (name == "floor" || name == "ceil") {
    BigInt q = numerator(args[0]) / denominator(args[0]);  // truncates toward zero
    if (name == "floor" && args[0] < 0 && Rational(q) != args[0]) q -= 1;
    if (name == "ceil" && args[0] > 0 && Rational(q) != args[0]) q += 1;
    return Rational(q);
  }
  if (name == "binomial" && args.size() == 2 && denominator(args[0]) == 1 && denominator(args[1]) == 1) {
    const BigInt n = numerator(args[0]), k = numerator(args[1]);
    if (n > 5000) t_work.capped = true;
    if (n < 0 || n > 5000 || k < 0) return std::nullopt;
    if (k > n) return Rational(0);
    BigInt result = 1;
    const BigInt rest = n - k;
    const long long kk = static_cast<long long>(std::min(k, rest));
    if (!spend(kk * cost_of(static_cast<size_t>(kk) * 13, false) / 8)) return std::nullopt;  // n <= 5000
    for (long long j = 1; j <= kk; ++j) result = result * (n - kk + j) / j;
    return Rational(result);
  }
  return std::nullopt;  // transcendental or unknown: numeric evaluation decides
}

std::optional<Rational> exact(const Expr& e, const RationalEnv& env) {
  if (!spend(1)) return std::nullopt;
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
        const bool fraction = denominator(total) != 1 || denominator(*value) != 1;
        if (!spend(cost_of(bits_of(total) + bits_of(*value), fraction))) return std::nullopt;
        if (!fraction) {  // integers: no gcd to keep lowest terms
          total = Rational(e.kind == ExprKind::kAdd ? numerator(total) + numerator(*value)
                                                    : numerator(total) * numerator(*value));
        } else if (e.kind == ExprKind::kAdd) {
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
      if (value && denominator(*value) == 1 && *value > 3000) t_work.capped = true;
      if (!value || denominator(*value) != 1 || *value < 0 || *value > 3000) return std::nullopt;
      BigInt result = 1;
      const long long n = static_cast<long long>(numerator(*value));
      if (!spend(n * cost_of(static_cast<size_t>(n) * 12, false) / 8)) return std::nullopt;  // n! < n^n
      for (long long k = 2; k <= n; ++k) result *= k;
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

// ---- exact evaluation in small numbers ----

// Most answers evaluate within 62-bit numerators and denominators: those are done in machine
// integers (__int128 holds every product), and only what overflows or needs more (roots of
// non-squares, big powers and factorials) goes to the big-number evaluation above.
struct Small {
  __int128 num = 0;
  __int128 den = 1;
};
using SmallEnv = std::vector<std::pair<const std::string*, Small>>;

constexpr __int128 kSmallLimit = static_cast<__int128>(1) << 62;

__int128 magnitude(__int128 x) { return x < 0 ? -x : x; }

__int128 gcd128(__int128 a, __int128 b) {
  a = magnitude(a), b = magnitude(b);
  while (b != 0) a = std::exchange(b, a % b);
  return a;
}

// num/den in lowest terms; nullopt when either part leaves the small range (or den is 0).
std::optional<Small> small(__int128 num, __int128 den) {
  if (den == 0) return std::nullopt;
  if (den < 0) num = -num, den = -den;
  const __int128 g = gcd128(num, den);
  if (g > 1) num /= g, den /= g;
  if (magnitude(num) >= kSmallLimit || den >= kSmallLimit) return std::nullopt;
  return Small{num, den};
}

std::optional<Small> small_number(const std::string& digits) {
  __int128 num = 0, den = 1;
  bool fraction = false;
  int count = 0;
  const bool negative = digits.starts_with('-');  // the -1 of a reciprocal
  for (const char c : std::string_view(digits).substr(negative ? 1 : 0)) {
    if (c == '.') {
      fraction = true;
      continue;
    }
    if (++count > 18) return std::nullopt;
    num = num * 10 + (c - '0');
    if (fraction) den *= 10;
  }
  return small(negative ? -num : num, den);
}

// The integer square root of x >= 0, if x is a square.
std::optional<__int128> small_square_root(__int128 x) {
  if (x < 0) return std::nullopt;
  __int128 r = static_cast<__int128>(std::sqrt(static_cast<long double>(x)));
  while (r > 0 && r * r > x) --r;
  while ((r + 1) * (r + 1) <= x) ++r;
  if (r * r != x) return std::nullopt;
  return r;
}

std::optional<Small> small_exact(const Expr& e, const SmallEnv& env) {
  if (!spend(1)) return std::nullopt;
  const auto arg = [&](size_t i) { return small_exact(*e.args[i], env); };
  switch (e.kind) {
    case ExprKind::kNumber: return small_number(e.text);
    case ExprKind::kSymbol:
      for (const auto& [name, value] : env) {
        if (*name == e.text) return value;
      }
      return std::nullopt;
    case ExprKind::kNeg: {
      auto x = arg(0);
      if (!x) return std::nullopt;
      return Small{-x->num, x->den};
    }
    case ExprKind::kAdd:
    case ExprKind::kMul: {
      std::optional<Small> total = Small{e.kind == ExprKind::kAdd ? 0 : 1, 1};
      for (size_t i = 0; i < e.args.size() && total; ++i) {
        auto x = arg(i);
        if (!x) return std::nullopt;
        total = e.kind == ExprKind::kAdd ? small(total->num * x->den + x->num * total->den, total->den * x->den)
                                         : small(total->num * x->num, total->den * x->den);
      }
      return total;
    }
    case ExprKind::kPow: {
      auto base = arg(0), exponent = arg(1);
      if (!base || !exponent || exponent->den != 1 || magnitude(exponent->num) > 126) return std::nullopt;
      if (exponent->num < 0 && base->num == 0) return std::nullopt;
      std::optional<Small> result = Small{1, 1};
      for (__int128 k = 0; k < magnitude(exponent->num) && result; ++k) {
        result = small(result->num * base->num, result->den * base->den);
      }
      if (result && exponent->num < 0) result = small(result->den, result->num);
      return result;
    }
    case ExprKind::kFactorial: {
      auto x = arg(0);
      if (!x || x->den != 1 || x->num < 0 || x->num > 20) return std::nullopt;
      __int128 result = 1;
      for (__int128 k = 2; k <= x->num; ++k) result *= k;
      return small(result, 1);
    }
    case ExprKind::kPercent: {
      auto x = arg(0);
      if (!x) return std::nullopt;
      return small(x->num, x->den * 100);
    }
    case ExprKind::kFunction: {
      if (e.args.size() == 1 && (e.text == "abs" || e.text == "sqrt")) {
        auto x = arg(0);
        if (!x) return std::nullopt;
        if (e.text == "abs") return Small{magnitude(x->num), x->den};
        auto top = small_square_root(x->num), bottom = small_square_root(x->den);
        if (!top || !bottom) return std::nullopt;
        return small(*top, *bottom);
      }
      if (e.args.size() == 2 && e.text == "mod") {
        auto x = arg(0), m = arg(1);
        if (!x || !m || x->den != 1 || m->den != 1 || m->num == 0) return std::nullopt;
        const __int128 modulus = magnitude(m->num);
        return Small{((x->num % modulus) + modulus) % modulus, 1};
      }
      return std::nullopt;  // the big-number evaluation knows more
    }
    default: return std::nullopt;
  }
}

bool small_terminates(__int128 den) {
  while (den % 2 == 0) den /= 2;
  while (den % 5 == 0) den /= 5;
  return den == 1;
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
  if (f == "mod" && a.size() == 2 && a[1].real() != 0) {
    const long double m = std::fabs(a[1].real());
    return Complex(std::fmod(std::fmod(x.real(), m) + m, m), 0);
  }
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
  if (!spend(1)) return std::nullopt;
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
    SmallEnv small_env;
    for (const auto& name : symbols) {
      const int n = top(random), d = bottom(random);
      small_env.emplace_back(&name, *small(n, d));
    }
    // A number and a decimal approximation of it (1/3 and 0.3333333) agree within the relative
    // tolerance; two integers, or two terminating decimals (16386.17 and 16386.16), only exactly.
    auto sa = small_exact(a, small_env);
    auto sb = sa ? small_exact(b, small_env) : std::nullopt;
    if (sa && sb) {
      if (sa->num == sb->num && sa->den == sb->den) continue;
      // (the tolerance is decided below, exactly)
      if (!symbols.empty() || (small_terminates(sa->den) && small_terminates(sb->den))) return false;
    }
    RationalEnv env;
    for (const auto& [name, value] : small_env) {
      env[*name] = Rational(static_cast<long long>(value.num), static_cast<long long>(value.den));
    }
    auto va = exact(a, env), vb = exact(b, env);
    if (!va || !vb) return std::nullopt;
    if (*va == *vb) continue;
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
  t_work.capped = false;
  if (auto exact_result = exactly_equal(a, b, symbols)) return *exact_result;
  // Numbers too big to hold exactly (10^{100000} against 10^{100000}+1) are not told apart by long
  // doubles either: undecided, not a guess.
  if (t_work.capped) {
    t_work.exhausted = true;
    return false;
  }
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

size_t count_plus_minus(const Expr& e) {
  size_t count = e.kind == ExprKind::kPlusMinus;
  for (const auto& arg : e.args) count += arg ? count_plus_minus(*arg) : 0;
  return count;
}

// A scalar with ± as the set of its readings; collections take each item's readings as items.
// More than kMaxReadings readings in one item cannot be decided.
ExprPtr expand_plus_minus(const ExprPtr& e) {
  auto set = std::make_shared<Expr>();
  set->kind = ExprKind::kSet;
  const bool collection = e->kind == ExprKind::kList || e->kind == ExprKind::kSet;
  for (const auto& item : collection ? e->args : std::vector<ExprPtr>{e}) {
    if (count_plus_minus(*item) > 6 || (size_t{1} << count_plus_minus(*item)) > kMaxReadings) {
      t_work.exhausted = true;
      return set;
    }
  }
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

// Every item of `a` matched to a distinct equivalent item of `b`: a bipartite matching (augmenting
// paths), each pair compared at most once, so that many alike items cannot make it exponential.
bool same_items_any_order(const std::vector<ExprPtr>& a, const std::vector<ExprPtr>& b) {
  if (a.size() != b.size()) return false;
  const size_t n = a.size();
  std::vector<size_t> owner(n, n);  // owner[j]: the item of `a` matched to b[j], n for none
  // Items written alike pair up first (a reordered list of 300 numbers is n log n, not n^2).
  std::multimap<std::string, size_t> by_text;
  for (size_t j = 0; j < n; ++j) by_text.emplace(to_string(*b[j]), j);
  std::vector<bool> matched(n, false);
  for (size_t i = 0; i < n; ++i) {
    auto it = by_text.find(to_string(*a[i]));
    if (it == by_text.end()) continue;
    owner[it->second] = i;
    matched[i] = true;
    by_text.erase(it);
  }
  std::vector<signed char> known(n * n, -1);  // -1: not compared yet
  const auto matches = [&](size_t i, size_t j) {
    signed char& k = known[i * n + j];
    if (k < 0) k = spend(1) && equivalent(a[i], b[j]) ? 1 : 0;
    return k == 1;
  };
  std::vector<bool> visited;
  std::function<bool(size_t)> augment = [&](size_t i) {
    for (size_t j = 0; j < n; ++j) {
      if (visited[j] || !matches(i, j)) continue;
      visited[j] = true;
      if (owner[j] == n || augment(owner[j])) {
        owner[j] = i;
        return true;
      }
    }
    return false;
  };
  for (size_t i = 0; i < n; ++i) {
    if (matched[i]) continue;
    visited.assign(n, false);
    if (!augment(i) || t_work.exhausted) return false;
  }
  return true;
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

// A name a value can be given to: symbols without numbers ("x", "AB", "\frac{NO}{BO}", "(p, q)"), an
// unknown function applied to anything ("f(2)", "P(A)"), and products and ratios of names ("AB:CD").
bool is_name(const Expr& e) {
  if (e.kind == ExprKind::kFunction && e.text.rfind("applied:", 0) == 0) return true;
  if (e.kind == ExprKind::kMul) {
    return std::all_of(e.args.begin(), e.args.end(), [](const ExprPtr& factor) {
      const bool inverse = factor->kind == ExprKind::kPow && factor->args[1]->kind == ExprKind::kNumber &&
                           factor->args[1]->text == "-1";
      return is_name(inverse ? *factor->args[0] : *factor);
    });
  }
  std::set<std::string> symbols;
  collect_symbols(e, symbols);
  return !symbols.empty() && !has_number(e);
}

bool is_constant(const Expr& e) {
  std::set<std::string> symbols;
  collect_symbols(e, symbols);
  return symbols.empty();
}

bool is_equality(const Expr& e) {
  return e.kind == ExprKind::kRelation && e.args.size() >= 2 &&
         e.text.find_first_not_of("= ") == std::string::npos;
}

// The value a labelled answer gives, or nullptr for a real equation. Labelled: "x = 5", "f(2) = 7",
// "AB:CD = 2", "(p, q) = (3, 2)", "\binom{6}{3} = 20" and "x = 2 + 3 = 5" (the left side is a name
// or evaluates to a number; the value is the last part), and "5 = x". Not labelled: "2x + z = 1",
// "y = 2x + 1" against an equation.
const Expr* labelled_value(const Expr& e) {
  if (!is_equality(e)) return nullptr;
  const Expr& lhs = *e.args.front();
  const Expr& rhs = *e.args.back();
  if (is_name(lhs)) return &rhs;
  if (e.args.size() == 2 && rhs.kind == ExprKind::kSymbol && !is_constant_symbol(rhs.text)) return &lhs;
  if (is_constant(lhs)) return &rhs;
  return nullptr;
}

// "x = 1, y = 2, x = 2, y = 1" (what "x = 1, y = 2 or x = 2, y = 1" leaves) as the groups
// "x = 1, y = 2" and "x = 2, y = 1": assignments whose names repeat in the same order; `e` otherwise.
ExprPtr assignment_groups(const ExprPtr& e) {
  if (e->kind != ExprKind::kList) return e;
  std::vector<std::string> names;
  for (const auto& item : e->args) {
    if (!is_equality(*item) || item->args.size() != 2 || item->args[0]->kind != ExprKind::kSymbol) return e;
    names.push_back(item->args[0]->text);
  }
  size_t period = 1;
  while (period < names.size() && names[period] != names[0]) ++period;
  if (period < 2 || period == names.size() || names.size() % period != 0) return e;
  for (size_t i = period; i < names.size(); ++i) {
    if (names[i] != names[i % period]) return e;
  }
  auto groups = std::make_shared<Expr>();
  groups->kind = ExprKind::kList;
  for (size_t start = 0; start < names.size(); start += period) {
    auto group = std::make_shared<Expr>();
    group->kind = ExprKind::kList;
    group->args.assign(e->args.begin() + static_cast<long>(start), e->args.begin() + static_cast<long>(start + period));
    groups->args.push_back(group);
  }
  return groups;
}

// "z = 1 + 1 = 2" as "z = 2": a chain of equalities that labels a value compares by its ends.
ExprPtr chain_ends(const ExprPtr& e) {
  if (!is_equality(*e) || e->args.size() < 3 || !labelled_value(*e)) return e;
  auto ends = std::make_shared<Expr>(*e);
  ends->args = {e->args.front(), e->args.back()};
  ends->text = "=";
  return ends;
}

ExprPtr symbol_expr(std::string name) {
  auto e = std::make_shared<Expr>();
  e->kind = ExprKind::kSymbol;
  e->text = std::move(name);
  return e;
}

ExprPtr interval_expr(ExprPtr low, ExprPtr high, bool low_closed, bool high_closed) {
  auto interval = std::make_shared<Expr>();
  interval->kind = ExprKind::kTuple;
  interval->args = {std::move(low), std::move(high)};
  interval->open = low_closed ? '[' : '(';
  interval->close = high_closed ? ']' : ')';
  return interval;
}

// The set of real numbers a condition on one variable describes, as intervals.
struct RealSet {
  std::string variable;
  std::vector<ExprPtr> intervals;  // kTuple (low, high) with their brackets
};

// The variable term of a condition: v, v + k or |v + k| (k constant; |k - v| too), as v, the shift
// k (null for none), and whether it is under an absolute value.
struct VariableTerm {
  std::string variable;
  ExprPtr shift;
  bool absolute = false;
};

std::optional<VariableTerm> variable_term(const Expr& t, bool absolute = false) {
  const auto is_variable = [](const Expr& x) { return x.kind == ExprKind::kSymbol && !is_constant_symbol(x.text); };
  if (is_variable(t)) return VariableTerm{t.text, nullptr, absolute};
  if (t.kind == ExprKind::kFunction && t.text == "abs" && t.args.size() == 1 && !absolute) {
    return variable_term(*t.args[0], true);
  }
  if (t.kind != ExprKind::kAdd) return std::nullopt;
  std::optional<std::string> variable;
  bool negative = false;
  std::vector<ExprPtr> rest;
  for (const auto& term : t.args) {
    const bool negated_variable = term->kind == ExprKind::kNeg && is_variable(*term->args[0]);
    if (!variable && (is_variable(*term) || (negated_variable && absolute))) {
      variable = negated_variable ? term->args[0]->text : term->text;
      negative = negated_variable;
    } else if (is_constant(*term)) {
      rest.push_back(term);
    } else {
      return std::nullopt;
    }
  }
  if (!variable) return std::nullopt;
  auto shift = std::make_shared<Expr>();
  shift->kind = ExprKind::kAdd;
  shift->args = std::move(rest);
  // |k - v| = |v - k|
  return VariableTerm{*variable, negative ? negated(shift) : ExprPtr(shift), absolute};
}

bool is_infinite(const Expr& e) {
  if (e.kind == ExprKind::kNeg) return is_infinite(*e.args[0]);
  return e.kind == ExprKind::kSymbol && e.text == "oo";
}

// "x > 3" is (3, oo); "1 <= x < 2" is [1, 2); "x \ne 0" is (-oo, 0) u (0, oo); "|x| < 1" is (-1, 1);
// "2 < |x - 1| \le 5" is [-4, -1) u (3, 6]; "x < -2, x > 3" (a list, as "or" leaves it) the union.
std::optional<RealSet> relation_as_set(const Expr& e) {
  if (e.kind == ExprKind::kList) {
    RealSet all;
    for (const auto& item : e.args) {
      auto part = relation_as_set(*item);
      if (!part || (!all.variable.empty() && part->variable != all.variable)) return std::nullopt;
      all.variable = part->variable;
      all.intervals.insert(all.intervals.end(), part->intervals.begin(), part->intervals.end());
    }
    if (all.intervals.empty()) return std::nullopt;
    return all;
  }
  if (e.kind != ExprKind::kRelation) return std::nullopt;
  const Relation r = canonical_relation(e);
  const ExprPtr oo = symbol_expr("oo"), minus_oo = negated(symbol_expr("oo"));
  // Bounds on the term t: low/high (null: none) and whether each is reached.
  ExprPtr low, high, excluded;
  bool low_closed = false, high_closed = false;
  std::optional<VariableTerm> term;
  if (r.ops.size() == 1 && r.ops[0] == "!=" && r.args.size() == 2) {
    const bool left = !is_constant(*r.args[0]);
    term = variable_term(*r.args[left ? 0 : 1]);
    excluded = r.args[left ? 1 : 0];
    if (!term || !is_constant(*excluded)) return std::nullopt;
  } else {
    for (const auto& op : r.ops) {
      if (op != "<" && op != "<=") return std::nullopt;
    }
    size_t at = 0;  // the position of the term among the arguments
    while (at < r.args.size() && is_constant(*r.args[at])) ++at;
    if (at == r.args.size() || at > 1 || r.args.size() - at > 2) return std::nullopt;
    term = variable_term(*r.args[at]);
    if (!term) return std::nullopt;
    if (at == 1) low = r.args[0], low_closed = r.ops[0] == "<=";
    if (at + 1 < r.args.size()) {
      high = r.args[at + 1];
      high_closed = r.ops[at] == "<=";
      if (!is_constant(*high)) return std::nullopt;
    }
  }
  // The intervals of t itself (for |u|, of u).
  std::vector<ExprPtr> parts;
  if (excluded) {
    if (term->absolute) {
      parts = {interval_expr(minus_oo, negated(excluded), false, false),
               interval_expr(negated(excluded), excluded, false, false), interval_expr(excluded, oo, false, false)};
    } else {
      parts = {interval_expr(minus_oo, excluded, false, false), interval_expr(excluded, oo, false, false)};
    }
  } else if (!term->absolute) {
    parts = {interval_expr(low ? low : minus_oo, high ? high : oo, low_closed, high_closed)};
  } else if (!low) {  // |u| < h
    parts = {interval_expr(negated(high), high, high_closed, high_closed)};
  } else if (!high) {  // |u| > l
    parts = {interval_expr(minus_oo, negated(low), false, low_closed), interval_expr(low, oo, low_closed, false)};
  } else {  // l < |u| < h
    parts = {interval_expr(negated(high), negated(low), high_closed, low_closed),
             interval_expr(low, high, low_closed, high_closed)};
  }
  // v = u - k
  if (term->shift && !term->shift->args.empty()) {
    for (auto& part : parts) {
      auto shifted = std::make_shared<Expr>(*part);
      for (auto& end : shifted->args) {
        if (!is_infinite(*end)) end = sum_of(end, negated(term->shift));
      }
      part = shifted;
    }
  }
  return RealSet{term->variable, std::move(parts)};
}

ExprPtr as_union(const RealSet& set) {
  if (set.intervals.size() == 1) return set.intervals[0];
  auto result = std::make_shared<Expr>();
  result->kind = ExprKind::kUnion;
  result->args = set.intervals;
  return result;
}

// "a=1, b=3" (or "b=3, a=1") as the tuple (1, 3), with its names in alphabetical order; nullopt
// unless every item gives a value to a plain symbol (each a different one).
std::optional<std::pair<ExprPtr, std::vector<std::string>>> assignments_as_tuple(const Expr& group) {
  if (group.kind != ExprKind::kList) return std::nullopt;
  auto tuple = std::make_shared<Expr>();
  tuple->kind = ExprKind::kTuple;
  tuple->open = '(';
  tuple->close = ')';
  std::map<std::string, ExprPtr> values;  // by name: "b=3, a=1" is (1, 3) too
  for (const auto& item : group.args) {
    if (!is_equality(*item) || item->args.size() != 2 || item->args[0]->kind != ExprKind::kSymbol) return std::nullopt;
    const std::string& name = item->args[0]->text;
    if (is_constant_symbol(name) || !values.emplace(name, item->args[1]).second) return std::nullopt;
  }
  std::vector<std::string> names;
  for (const auto& [name, value] : values) {
    names.push_back(name);
    tuple->args.push_back(value);
  }
  return std::make_pair(ExprPtr(tuple), names);
}

bool equivalent(const ExprPtr& a_in, const ExprPtr& b_in) {
  if (!spend(1)) return false;
  ExprPtr a = assignment_groups(chain_ends(a_in)), b = assignment_groups(chain_ends(b_in));
  // One solution against a tuple: "b=3, a=1" and (1, 3); lists of solutions ("a=1, b=3; a=2, b=5",
  // which the parser reads as a list of groups) then match lists of tuples item by item.
  if (b->kind == ExprKind::kTuple) {
    if (auto tuple = assignments_as_tuple(*a)) a = tuple->first;
  }
  if (a->kind == ExprKind::kTuple) {
    if (auto tuple = assignments_as_tuple(*b)) b = tuple->first;
  }
  // Conditions against the intervals they describe: "x > 3" and (3, oo), "|x| < 1" and (-1, 1).
  const auto is_set = [](const Expr& e) { return e.kind == ExprKind::kTuple || e.kind == ExprKind::kUnion; };
  if (is_set(*a) && !is_set(*b)) {
    if (auto set = relation_as_set(*b)) return equivalent(a, as_union(*set));
  }
  if (is_set(*b) && !is_set(*a)) {
    if (auto set = relation_as_set(*a)) return equivalent(as_union(*set), b);
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
  if (a->kind == ExprKind::kRelation && b->kind == ExprKind::kRelation && relations_equivalent(*a, *b)) return true;
  // The same condition written two ways: "2 < |x| \le 5" and "-5 \le x < -2, 2 < x \le 5".
  const auto is_condition = [](const Expr& e) {
    return e.kind == ExprKind::kRelation || (e.kind == ExprKind::kList && e.args[0]->kind == ExprKind::kRelation);
  };
  if (is_condition(*a) && is_condition(*b)) {
    auto set_a = relation_as_set(*a), set_b = relation_as_set(*b);
    if (set_a && set_b && set_a->variable == set_b->variable) return equivalent(as_union(*set_a), as_union(*set_b));
    if (a->kind == ExprKind::kRelation && b->kind == ExprKind::kRelation) return false;
  }
  if (const Expr* value = labelled_value(*a); value && b->kind != ExprKind::kRelation) {
    return equivalent(std::shared_ptr<const Expr>(a, value), b);
  }
  if (const Expr* value = labelled_value(*b); value && a->kind != ExprKind::kRelation) {
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
    if (text[i] == '_' && i + 1 < text.size() && text[i + 1] == '{') {
      // a subscript names a symbol (m_{total}, v_{initial}): its letters are no words
      const size_t close = text.find('}', i);
      i = close == std::string_view::npos ? text.size() : close + 1;
      continue;
    }
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

// "Area = 12", "the area is 12": a label in words before the value; the value, or nullopt.
std::optional<std::string> after_word_label(const std::string& text) {
  size_t i = 0;
  while (i < text.size() && (std::isalpha(static_cast<unsigned char>(text[i])) || text[i] == ' ')) ++i;
  if (i < 2 || i == text.size()) return std::nullopt;
  std::string rest;
  if (text[i] == '=') {
    rest = text.substr(i + 1);
  } else if (text.substr(0, i).ends_with(" is ")) {
    rest = text.substr(i);
  } else {
    return std::nullopt;
  }
  while (!rest.empty() && rest.front() == ' ') rest.erase(0, 1);
  if (rest.empty() || !has_word(text.substr(0, i))) return std::nullopt;
  return rest;
}

bool prepared_equivalent(const std::string& a_in, const std::string& b_in) {
  const std::string a = after_word_label(a_in).value_or(a_in), b = after_word_label(b_in).value_or(b_in);
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

size_t digits_at(std::string_view text, size_t at) {
  size_t end = at;
  while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]))) ++end;
  return end - at;
}

// "3,75" read as 3.75: one comma between digits with other than three after it (three would be a
// thousands separator), an optional sign and percent; nullopt for anything else.
std::optional<std::string> decimal_comma(const std::string& text) {
  size_t i = text.starts_with('-') ? 1 : 0;
  const size_t whole = digits_at(text, i);
  if (whole == 0 || i + whole >= text.size() || text[i + whole] != ',') return std::nullopt;
  const size_t fraction = digits_at(text, i + whole + 1);
  const size_t end = i + whole + 1 + fraction;
  if (fraction == 0 || fraction == 3) return std::nullopt;
  if (end != text.size() && !(end + 1 == text.size() && text[end] == '%')) return std::nullopt;
  std::string decimal = text;
  decimal[i + whole] = '.';
  return decimal;
}

bool decide(std::string_view gold, std::string_view pred) {
  const std::string a = prepare(normalize_answer(repair_transport(gold)));
  std::string b = prepare(normalize_answer(repair_transport(pred)));
  // A decimal comma in the prediction where the gold answer is one number (gold is read as written:
  // its "1,2" is a list).
  if (a.find_first_of(",;") == std::string::npos) {
    if (auto decimal = decimal_comma(b)) b = *decimal;
  }
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

}  // namespace

bool answers_equivalent(std::string_view gold, std::string_view pred) {
  t_work = Work{};
  const bool equivalent = decide(gold, pred);
  if (!t_work.exhausted) return equivalent;
  g_undecided.fetch_add(1, std::memory_order_relaxed);
  return false;
}

uint64_t undecided_grades() { return g_undecided.load(std::memory_order_relaxed); }

Grade grade_texts(std::string_view gold_text, std::string_view pred_text) {
  Grade grade;
  grade.gold_answer = answer_from_text(gold_text);
  grade.pred_answer = answer_from_text(pred_text);
  grade.equivalent = answers_equivalent(grade.gold_answer, grade.pred_answer);
  return grade;
}

}  // namespace torl::rewards
