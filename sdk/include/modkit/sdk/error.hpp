// Error type of the C++ SDK and the bridge between exceptions and ABI statuses.
#pragma once

#include <modkit/modkit.h>

#include <exception>
#include <new>
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
///
/// `error` is taken by reference so that `check(host, fn(..., &err), err)` reads
/// `err` after `fn` has set it: C++ leaves the order in which arguments are
/// evaluated unspecified, and GCC copies a by-value `err` before calling `fn`
/// (the host's message was lost as "unknown host error", and never freed).
inline void check(const modkit_host& host, modkit_status status, modkit_error* const& error) {
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

namespace detail {

/// Reports `code` and `message` through the host's error_new.
inline modkit_status fail(const modkit_host* host, modkit_status code, const char* message,
                          modkit_error** error) noexcept {
  if (error != nullptr && host != nullptr && host->error_new != nullptr) {
    *error = host->error_new(host, code, message);
  }
  return code;
}

/// Runs `f`, turning every exception into a status and a host error: what
/// each function the host calls does, so that no exception crosses the ABI.
template <class F>
modkit_status guard(const modkit_host* host, modkit_error** error, F&& f) noexcept {
  try {
    f();
    return MODKIT_OK;
  } catch (const Error& e) {
    return fail(host, e.code(), e.what(), error);
  } catch (const std::bad_alloc&) {
    return fail(host, MODKIT_ERROR_OUT_OF_MEMORY, "out of memory", error);
  } catch (const std::exception& e) {
    return fail(host, MODKIT_ERROR_INTERNAL, e.what(), error);
  } catch (...) {
    return fail(host, MODKIT_ERROR_INTERNAL,
                "threw a value that is not a std::exception (throw modkit::sdk::Error or a std::exception "
                "to say what failed)",
                error);
  }
}

}  // namespace detail
}  // namespace modkit::sdk
