// CHECKs of answers_equivalent that print the pair when they fail.
#pragma once

#include <doctest/doctest.h>

#include <string>

#include "rewards/grader.hpp"

namespace torl::rewards::testing {

inline void same(const std::string& gold, const std::string& pred) {
  CHECK_MESSAGE(answers_equivalent(gold, pred), gold << "  ~  " << pred);
}
inline void different(const std::string& gold, const std::string& pred) {
  CHECK_MESSAGE(!answers_equivalent(gold, pred), gold << "  !~  " << pred);
}

}  // namespace torl::rewards::testing
