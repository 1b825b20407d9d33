// The core's log level and destination, set by hosts and the CLI without touching spdlog.
#include <modkit/core/logging.hpp>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace modkit {

void set_log_level(LogLevel level) {
  switch (level) {
    case LogLevel::Trace: spdlog::set_level(spdlog::level::trace); break;
    case LogLevel::Debug: spdlog::set_level(spdlog::level::debug); break;
    case LogLevel::Info: spdlog::set_level(spdlog::level::info); break;
    case LogLevel::Warn: spdlog::set_level(spdlog::level::warn); break;
    case LogLevel::Error: spdlog::set_level(spdlog::level::err); break;
    case LogLevel::Off: spdlog::set_level(spdlog::level::off); break;
  }
}

void log_to_stderr() {
  const auto level = spdlog::get_level();
  auto logger = spdlog::get("modkit");  // a second call keeps the first logger
  if (!logger) logger = spdlog::stderr_color_mt("modkit");
  logger->set_level(level);
  spdlog::set_default_logger(std::move(logger));
}

}  // namespace modkit
