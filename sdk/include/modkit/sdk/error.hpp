// Error type of the C++ SDK and the bridge between exceptions and ABI statuses.
#pragma once

#include <modkit/modkit.h>

#include <stdexcept>
#include <string>

namespace modkit::sdk {

/// An error with an ABI status code. Throw it from any callback: the SDK's
/// trampolines turn it into a status and a host error, so it never crosses
/// the ABI as an exception.
class Error : public std::runtime_error {
 public:
  Error(modkit_status code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  explicit Error(const std::string& message) : Error(MODKIT_ERROR_INVALID_ARGUMENT, message) {}

  modkit_status code() const noexcept { return code_; }

 private:
  modkit_status code_;
};

/// Throws an Error carrying `error`'s message when `status` is not MODKIT_OK,
/// and frees `error` either way.
inline void check(const modkit_host& host, modkit_status status, modkit_error* error) {
  if (status == MODKIT_OK) {
    if (error != nullptr) host.error_free(error);
    return;
  }
  std::string message = error != nullptr ? host.error_message(error) : "unknown host error";
  if (error != nullptr) host.error_free(error);
  throw Error(status, message);
}

/// Requires a host service that may be absent (NULL) in older or smaller hosts.
template <class Fn>
Fn require_service(Fn fn, const char* name) {
  if (fn == nullptr) {
    throw Error(MODKIT_ERROR_UNSUPPORTED,
                std::string("the host does not provide '") + name + "'");
  }
  return fn;
}

}  // namespace modkit::sdk
