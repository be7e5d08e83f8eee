// The logging facade: one process-wide logger with levels, writing to stderr (only tools/ prints to
// stdout). Thread-safe: lines from different threads never interleave. Log an error once, where it is
// handled.
//
//   TORL_LOG(kInfo) << "loaded " << n << " prompts from " << path;
//
// The streamed expression is not evaluated when the level is disabled.
#pragma once

#include <functional>
#include <sstream>
#include <string>
#include <string_view>

#include "common/status.hpp"

namespace torl::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

// Parses "debug", "info", "warn", "error" or "off".
Expected<Level> parse_level(std::string_view name);
const char* level_name(Level level);

void set_level(Level level);
Level level();
inline bool enabled(Level at) { return at >= level(); }

// Where finished lines go; the default writes "<L> <UTC time> <message>" to stderr. Tests install a
// sink to capture lines. Pass nullptr to restore the default.
using Sink = std::function<void(Level, std::string_view line)>;
void set_sink(Sink sink);

// Formats and emits one line (called by TORL_LOG).
void write(Level level, std::string_view message);

// Collects one line and emits it when destroyed.
class Line {
 public:
  explicit Line(Level level) : level_(level) {}
  ~Line() { write(level_, stream_.str()); }
  Line(const Line&) = delete;
  Line& operator=(const Line&) = delete;

  template <class T>
  Line& operator<<(const T& value) {
    stream_ << value;
    return *this;
  }

 private:
  Level level_;
  std::ostringstream stream_;
};

}  // namespace torl::log

#define TORL_LOG(level)                                           \
  if (!::torl::log::enabled(::torl::log::Level::level)) {         \
  } else                                                          \
    ::torl::log::Line(::torl::log::Level::level)
