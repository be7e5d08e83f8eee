// A small math AST for final answers, parsed from LaTeX or plain text: numbers, symbols, + - * / ^,
// implicit multiplication, \frac, \sqrt[n]{}, functions, factorial, binomials, ±, percent, relations,
// and the structures answers come in (tuples and intervals with their brackets, sets, comma lists,
// unions of intervals, matrices). Immutable after parsing; any thread.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace torl::rewards {

struct Expr;
using ExprPtr = std::shared_ptr<const Expr>;

enum class ExprKind {
  // scalars
  kNumber,     // text: the literal digits ("12", "0.25"); exact
  kSymbol,     // text: name ("x", "x_1", "\alpha", "pi", "e", "i", "oo" for infinity)
  kAdd,        // args: terms
  kMul,        // args: factors
  kPow,        // args: base, exponent
  kNeg,        // args: operand
  kFunction,   // text: name (sin, log, sqrt, root, abs, floor, ceil, binomial, ...); args
  kFactorial,  // args: operand
  kPercent,    // args: operand ("50%": 50 or 0.5)
  kPlusMinus,  // args: a, b   (a ± b; a may be null for "±b")
  // structures
  kRelation,   // text: "=", "<", "<=", ">", ">=", "!=", "~"; args: lhs, rhs
  kTuple,      // open, close: brackets ('(' '[' ')' ']'); args: items (also intervals and points)
  kSet,        // args: items (written \{ ... \})
  kList,       // args: items (a bare comma list at the top level)
  kUnion,      // args: parts (A \cup B)
  kMatrix,     // rows x cols in args, row-major
};

struct Expr {
  ExprKind kind;
  std::string text;
  std::vector<ExprPtr> args;
  char open = 0, close = 0;  // for kTuple
  size_t rows = 0, cols = 0;  // for kMatrix
};

// Parses a normalised answer (see normalize_answer in answer.hpp). nullopt when it is not
// recognisable mathematics (the caller then compares it as text).
std::optional<ExprPtr> parse_answer(std::string_view text);

// For debugging and tests: a fully parenthesised rendering, e.g. "(add 1 (mul 2 x))".
std::string to_string(const Expr& expr);

}  // namespace torl::rewards
