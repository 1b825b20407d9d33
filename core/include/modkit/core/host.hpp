// The host side of the ABI's error and logging services, shared by every host table.
#pragma once

#include <modkit/core/export.hpp>

#include <modkit/modkit.h>

#include <string>

namespace modkit {

/// The host table of modkit_core: errors and logging through spdlog, no model
/// services (modkit_torch provides a table with them). Static, thread-safe.
MODKIT_CORE_API const modkit_host* default_host();

/// Fills the error and logging entries of `table` with the core's functions;
/// hosts that add services start from this.
MODKIT_CORE_API void init_host_table(modkit_host& table);

/// A host-allocated error (what plugins receive from error_new).
MODKIT_CORE_API modkit_error* make_error(modkit_status code, const std::string& message);

/// The message of `error`, freeing it; "" for NULL.
MODKIT_CORE_API std::string take_error_message(modkit_error* error);

/// The name of a status code: "invalid argument", "not found"...
MODKIT_CORE_API const char* status_name(modkit_status code);

}  // namespace modkit
