#include "rewards/grade_bench.hpp"

#include <algorithm>
#include <chrono>
#include <map>

#include "rewards/grader.hpp"

namespace torl::rewards {
namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

// Microseconds for one grade of `pair`: the median of three.
double single_grade_us(const BenchPair& pair) {
  std::vector<double> times;
  for (int i = 0; i < 3; ++i) {
    const auto start = Clock::now();
    [[maybe_unused]] const volatile bool equivalent = answers_equivalent(pair.gold, pair.pred);
    times.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
  }
  return median(times);
}

}  // namespace

GradeBenchResult run_grade_bench(const std::vector<BenchPair>& pairs, int rounds, double seconds_per_kind) {
  GradeBenchResult result;
  result.rounds = std::max(rounds, 1);
  std::vector<std::vector<const BenchPair*>> groups;
  std::map<std::string, size_t> group_of;
  for (const auto& pair : pairs) {
    const std::string kind = pair.kind.empty() ? "all" : pair.kind;
    auto [it, added] = group_of.emplace(kind, groups.size());
    if (added) {
      groups.emplace_back();
      result.kinds.push_back({.kind = kind});
    }
    groups[it->second].push_back(&pair);
  }

  // Verdicts (and a warm-up), then each pair alone.
  std::map<const BenchPair*, bool> verdict;
  const uint64_t undecided_before = undecided_grades();
  for (const auto& pair : pairs) {
    const bool equivalent = answers_equivalent(pair.gold, pair.pred);
    verdict[&pair] = equivalent;
    if (!equivalent) result.different.push_back(&pair);
    if (pair.expected && *pair.expected != equivalent) result.unexpected.push_back(&pair);
  }
  result.undecided = undecided_grades() - undecided_before;
  result.all = {.kind = "mix", .pairs = pairs.size(), .equivalent = pairs.size() - result.different.size()};
  for (size_t g = 0; g < groups.size(); ++g) {
    KindSpeed& kind = result.kinds[g];
    kind.pairs = groups[g].size();
    for (const BenchPair* pair : groups[g]) {
      kind.equivalent += verdict[pair];
      const double us = single_grade_us(*pair);
      if (us > kind.slowest_us) kind.slowest_us = us, kind.slowest = pair;
    }
    if (kind.slowest_us > result.all.slowest_us) result.all.slowest_us = kind.slowest_us, result.all.slowest = kind.slowest;
  }

  // Timed rounds: the clock is read once per pass, not per grade.
  std::vector<std::vector<double>> kind_rates(groups.size());
  std::vector<double> mix_rates;
  for (int round = 0; round < result.rounds; ++round) {
    double mix_seconds_per_pass = 0;
    for (size_t g = 0; g < groups.size(); ++g) {
      long passes = 0;
      double seconds = 0;
      const auto start = Clock::now();
      do {
        size_t equivalent = 0;
        for (const BenchPair* pair : groups[g]) equivalent += answers_equivalent(pair->gold, pair->pred);
        if (equivalent != result.kinds[g].equivalent) result.stable = false;
        ++passes;
        seconds = std::chrono::duration<double>(Clock::now() - start).count();
      } while (seconds < seconds_per_kind);
      result.grades += passes * static_cast<long>(groups[g].size());
      kind_rates[g].push_back(static_cast<double>(groups[g].size()) * passes / seconds);
      mix_seconds_per_pass += seconds / passes;
    }
    mix_rates.push_back(static_cast<double>(pairs.size()) / mix_seconds_per_pass);
  }
  for (size_t g = 0; g < groups.size(); ++g) result.kinds[g].grades_per_second = median(kind_rates[g]);
  result.all.grades_per_second = median(mix_rates);
  return result;
}

}  // namespace torl::rewards
