// Status and Expected<T>: errors as values (see STYLE.md "Errors").
//
// A Status is either ok or carries a code and a message that says what failed, where and what to do.
// Each layer that passes an error up adds what it was doing with `with_context`, so the final message
// reads from the outermost action to the root cause:
//   loading checkpoint 'runs/a/step_200': shape mismatch for lm_head.weight [1024,64] vs [151936,64]
// Both types are cheap to move, [[nodiscard]], and safe to use from any thread (they own no shared state).
#pragma once

#include <string>
#include <utility>
#include <variant>

#include "common/check.hpp"

namespace torl {

enum class StatusCode {
  kOk,
  kInvalidArgument,  // bad user input: config, flags, request fields
  kNotFound,         // a file, key or tensor that should exist does not
  kIoError,          // reading or writing failed
  kUnavailable,      // a service or device cannot be reached now; retrying may help
  kTimeout,          // a deadline passed
  kInternal,         // a bug in torl; the message says which invariant
  kUnimplemented,    // a feature that is not built (yet)
  kAborted,          // gave up without changing anything, and the caller may go on (a training step
                     // with nothing to train on, a non-finite gradient)
};

// Name of a code, e.g. "invalid argument".
const char* status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // ok
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok_status() { return {}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // Prefixes the message with what the caller was doing: "context: message". No-op when ok.
  Status with_context(const std::string& context) const&;
  Status with_context(const std::string& context) &&;

  // "ok", or the message (which already says what failed).
  std::string to_string() const { return ok() ? "ok" : message_; }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status invalid_argument(std::string message) {
  return {StatusCode::kInvalidArgument, std::move(message)};
}
inline Status not_found(std::string message) { return {StatusCode::kNotFound, std::move(message)}; }
inline Status io_error(std::string message) { return {StatusCode::kIoError, std::move(message)}; }
inline Status unimplemented(std::string message) {
  return {StatusCode::kUnimplemented, std::move(message)};
}

// A value or the Status that explains why there is none. Construct from a T or a non-ok Status.
template <class T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : state_(std::in_place_index<0>, std::move(value)) {}
  Expected(Status status) : state_(std::in_place_index<1>, std::move(status)) {
    TORL_CHECK(!std::get<1>(state_).ok(), "Expected<T> built from an ok Status carries no value");
  }

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  // The value; calling these on an error is a bug (checked).
  T& value() & { return checked_value(); }
  const T& value() const& { return const_cast<Expected*>(this)->checked_value(); }
  T&& value() && { return std::move(checked_value()); }
  T* operator->() { return &checked_value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return checked_value(); }
  const T& operator*() const& { return value(); }

  // The error; ok when there is a value.
  Status status() const { return ok() ? Status() : std::get<1>(state_); }

 private:
  T& checked_value() {
    TORL_CHECK(ok(), "value() on an error: " + std::get<1>(state_).message());
    return std::get<0>(state_);
  }

  std::variant<T, Status> state_;
};

}  // namespace torl

// Returns the Status of `expr` from the enclosing function when it is not ok.
#define TORL_RETURN_IF_ERROR(expr)              \
  do {                                          \
    ::torl::Status torl_status_ = (expr);       \
    if (!torl_status_.ok()) return torl_status_; \
  } while (false)
