// Exception types of the modkit core, named after the Python exceptions llmcompressor raises.
#pragma once

#include <modkit/core/export.hpp>

#include <stdexcept>
#include <string>

namespace modkit {

/// Base of every error the core throws.
class MODKIT_CORE_API Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Lifecycle misuse (Python's RuntimeError): initialize twice, update after finalize...
class MODKIT_CORE_API RuntimeError : public Error {
 public:
  using Error::Error;
};

/// A bad value or request (Python's ValueError): unknown modifier type, bad
/// parameter, events out of order...
class MODKIT_CORE_API ValueError : public Error {
 public:
  using Error::Error;
};

/// A plugin callback failed: carries the ABI status it returned.
class MODKIT_CORE_API PluginError : public Error {
 public:
  PluginError(int status, const std::string& message) : Error(message), status_(status) {}
  int status() const noexcept { return status_; }

 private:
  int status_;
};

}  // namespace modkit

namespace modkit {

/// A modifier type exists but its plugin failed to load or validate; the
/// message is the recorded load error.
class MODKIT_CORE_API LoadError : public ValueError {
 public:
  using ValueError::ValueError;
};

}  // namespace modkit
