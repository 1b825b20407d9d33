// Control over the core's diagnostic log (spdlog stays private to the core).
#pragma once

#include <modkit/core/export.hpp>

namespace modkit {

/// How much the core logs; each level includes the ones after it.
enum class LogLevel { Trace, Debug, Info, Warn, Error, Off };

/// Sets the level of the core's log. Thread-safe.
MODKIT_CORE_API void set_log_level(LogLevel level);

/// Sets the level of what plugins log through the host table (State::log, modkit_host.log),
/// apart from the core's own diagnostics: `modkit apply` shows plugins' INFO lines (their
/// progress) while the core stays quiet. Once it is called, plugin messages go to stderr as
/// "Source: message" lines; until then they go to the core's log at its level. Thread-safe.
MODKIT_CORE_API void set_plugin_log_level(LogLevel level);

/// Sends the core's log to stderr instead of spdlog's default (stdout), so a
/// tool's stdout stays machine-readable. Call once, before other threads log.
MODKIT_CORE_API void log_to_stderr();

}  // namespace modkit
