// The core's log level and destination, set by hosts and the CLI without touching spdlog.
#include <modkit/core/logging.hpp>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>

namespace modkit {
namespace detail {
// spdlog's level of plugin messages; -1 (unset) follows the core's level.
std::atomic<int> g_plugin_log_level{-1};
}  // namespace detail

namespace {
spdlog::level::level_enum spdlog_level(LogLevel level) {
  switch (level) {
    case LogLevel::Trace: return spdlog::level::trace;
    case LogLevel::Debug: return spdlog::level::debug;
    case LogLevel::Info: return spdlog::level::info;
    case LogLevel::Warn: return spdlog::level::warn;
    case LogLevel::Error: return spdlog::level::err;
    case LogLevel::Off: return spdlog::level::off;
  }
  return spdlog::level::off;
}
}  // namespace

void set_log_level(LogLevel level) { spdlog::set_level(spdlog_level(level)); }

void set_plugin_log_level(LogLevel level) { detail::g_plugin_log_level.store(static_cast<int>(spdlog_level(level))); }

void log_to_stderr() {
  const auto level = spdlog::get_level();
  auto logger = spdlog::get("modkit");  // a second call keeps the first logger
  if (!logger) logger = spdlog::stderr_color_mt("modkit");
  logger->set_level(level);
  spdlog::set_default_logger(std::move(logger));
}

}  // namespace modkit
