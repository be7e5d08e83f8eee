#include "demo/tasks.hpp"

#include <numeric>

#include "common/random.hpp"

namespace torl::demo {
namespace {

int64_t power_mod(int64_t base, int64_t exponent, int64_t modulus) {
  int64_t result = 1 % modulus;
  base %= modulus;
  for (; exponent > 0; exponent >>= 1) {
    if (exponent & 1) result = result * base % modulus;
    base = base * base % modulus;
  }
  return result;
}

std::string str(int64_t x) { return std::to_string(x); }

// How often a direct answer to a hard problem is right anyway.
constexpr double kLuckyGuess = 0.05;

}  // namespace

Task make_task(uint64_t seed, int64_t index) {
  Stream r(seed * 0x100000001b3ULL + static_cast<uint64_t>(index));
  Task t;
  switch (index % 5) {
    case 0: {
      const int64_t a = r.between(100, 9999), b = r.between(100, 9999);
      t = {"product", "What is " + str(a) + " * " + str(b) + "?", str(a * b), "print(" + str(a) + " * " + str(b) + ")", true};
      break;
    }
    case 1: {
      const int64_t a = r.between(2, 99), e = r.between(10, 999), m = r.between(7, 997);
      t = {"power_mod", "What is " + str(a) + "^" + str(e) + " mod " + str(m) + "?", str(power_mod(a, e, m)),
           "print(pow(" + str(a) + ", " + str(e) + ", " + str(m) + "))", true};
      break;
    }
    case 2: {
      const int64_t n = r.between(10, 200);
      t = {"square_sum", "What is 1^2 + 2^2 + ... + " + str(n) + "^2?", str(n * (n + 1) * (2 * n + 1) / 6),
           "print(sum(k * k for k in range(1, " + str(n) + " + 1)))", true};
      break;
    }
    case 3: {
      const int64_t n = r.between(100, 9999), p = r.between(2, 9);
      int64_t q = r.between(2, 9);
      if (q == p) q = p + 1;
      const int64_t lcm = p * q / std::gcd(p, q);
      t = {"count_multiples",
           "How many integers from 1 to " + str(n) + " are divisible by " + str(p) + " or " + str(q) + "?",
           str(n / p + n / q - n / lcm),
           "print(sum(1 for k in range(1, " + str(n) + " + 1) if k % " + str(p) + " == 0 or k % " + str(q) + " == 0))",
           true};
      break;
    }
    default: {  // the easy ones, in turn
      if ((index / 5) % 2 == 0) {
        const int64_t a = r.between(1, 20), b = r.between(1, 20);
        t = {"sum", "What is " + str(a) + " + " + str(b) + "?", str(a + b), "print(" + str(a) + " + " + str(b) + ")", false};
      } else {
        const int64_t a = r.between(1, 30);
        t = {"double", "What is twice " + str(a) + "?", str(2 * a), "print(2 * " + str(a) + ")", false};
      }
      break;
    }
  }
  return t;
}

Json to_json(const Task& task, const std::string& id) {
  return {{"id", id}, {"problem", task.problem}, {"answer", task.answer}, {"family", task.family},
          {"tool_helps", task.tool_helps}};
}

std::string corpus_response(const Task& task, bool use_tool, uint64_t seed) {
  const std::string restated = "We need to answer: " + task.problem + "\n";
  if (use_tool) {
    return restated + "Let me compute it.\n```python\n" + task.code + "\n```\n```output\n" + task.answer +
           "\n```\nThe answer is \\boxed{" + task.answer + "}.";
  }
  Stream r(seed);
  std::string answer = task.answer;
  if (task.tool_helps && !r.chance(kLuckyGuess)) {
    // a near miss: one digit changed (never the leading one to 0)
    const size_t at = static_cast<size_t>(r.between(0, static_cast<int64_t>(answer.size()) - 1));
    char digit = static_cast<char>('0' + r.between(0, 9));
    if (digit == answer[at]) digit = static_cast<char>('0' + (answer[at] - '0' + 1) % 10);
    if (!(at == 0 && digit == '0' && answer.size() > 1)) answer[at] = digit;
    else answer[at] = answer[at] == '9' ? '8' : static_cast<char>(answer[at] + 1);
  }
  return restated + "The answer is \\boxed{" + answer + "}.";
}

}  // namespace torl::demo
