#include "common/log.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace torl::log {
namespace {

constexpr std::array<const char*, 5> kLevelNames = {"debug", "info", "warn", "error", "off"};

std::atomic<Level> g_level{Level::kInfo};

// Guards g_sink and serialises writes so that lines never interleave.
std::mutex g_mutex;
Sink g_sink;

std::string utc_timestamp() {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const std::time_t seconds = system_clock::to_time_t(now);
  const auto millis = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02d %02d:%02d:%02d.%03d", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(millis));
  return buffer;
}

}  // namespace

Expected<Level> parse_level(std::string_view name) {
  for (size_t i = 0; i < kLevelNames.size(); ++i) {
    if (name == kLevelNames[i]) return static_cast<Level>(i);
  }
  return invalid_argument("unknown log level '" + std::string(name) +
                          "' (expected debug, info, warn, error or off)");
}

const char* level_name(Level level) { return kLevelNames[static_cast<size_t>(level)]; }

void set_level(Level level) { g_level.store(level, std::memory_order_relaxed); }
Level level() { return g_level.load(std::memory_order_relaxed); }

void set_sink(Sink sink) {
  std::lock_guard lock(g_mutex);
  g_sink = std::move(sink);
}

void write(Level level, std::string_view message) {
  std::lock_guard lock(g_mutex);
  if (g_sink) {
    g_sink(level, message);
    return;
  }
  const char letter = "DIWEO"[static_cast<int>(level)];
  std::fprintf(stderr, "%c %s %.*s\n", letter, utc_timestamp().c_str(),
               static_cast<int>(message.size()), message.data());
}

}  // namespace torl::log
