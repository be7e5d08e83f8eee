#include "common/status.hpp"

namespace torl {

const char* status_code_name(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kInvalidArgument: return "invalid argument";
    case StatusCode::kNotFound: return "not found";
    case StatusCode::kIoError: return "i/o error";
    case StatusCode::kUnavailable: return "unavailable";
    case StatusCode::kTimeout: return "timeout";
    case StatusCode::kInternal: return "internal";
    case StatusCode::kUnimplemented: return "unimplemented";
    case StatusCode::kAborted: return "aborted";
  }
  return "unknown";
}

Status Status::with_context(const std::string& context) const& {
  if (ok()) return *this;
  return {code_, context + ": " + message_};
}

Status Status::with_context(const std::string& context) && {
  if (ok()) return std::move(*this);
  message_ = context + ": " + message_;
  return std::move(*this);
}

}  // namespace torl
