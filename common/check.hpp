// TORL_CHECK: broken invariants abort with file, line and a message. Never use it for user input;
// expected failures are Status values (common/status.hpp).
#pragma once

#include <string>

namespace torl::detail {
[[noreturn]] void check_failed(const char* file, int line, const char* condition,
                               const std::string& message);
}  // namespace torl::detail

#define TORL_CHECK(cond, msg)                                            \
  do {                                                                   \
    if (!(cond)) ::torl::detail::check_failed(__FILE__, __LINE__, #cond, (msg)); \
  } while (false)
