// Control over the core's diagnostic log (spdlog stays private to the core).
#pragma once

namespace modkit {

/// How much the core logs; each level includes the ones after it.
enum class LogLevel { Trace, Debug, Info, Warn, Error, Off };

/// Sets the level of the core's log. Thread-safe.
void set_log_level(LogLevel level);

/// Sends the core's log to stderr instead of spdlog's default (stdout), so a
/// tool's stdout stays machine-readable. Call once, before other threads log.
void log_to_stderr();

}  // namespace modkit
