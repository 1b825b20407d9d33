// Helpers of the modkit_torch tests: scratch directories, message checks and C-style service calls.
#pragma once

#include <modkit/core/host.hpp>
#include <modkit/torch/model.hpp>
#include <modkit/modkit.h>

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

namespace modkit {

/// Prints "name (ClassName)" in failed checks ("<root>" for the root's empty name).
inline std::ostream& operator<<(std::ostream& out, const ModuleInfo& m) {
  return out << (m.name.empty() ? "<root>" : m.name) << " (" << m.class_name << ")";
}

}  // namespace modkit

namespace modkit::testing {

/// A fresh directory under $TMPDIR (or /tmp), removed with everything in it.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "modkit_torch_XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  std::string path() const { return path_.string(); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  /// Names of the entries in the directory, sorted (hidden temporaries included).
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(path_)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  std::filesystem::path path_;
};

/// The message of the exception `Ex` that `f` throws; "<no exception>" otherwise.
template <class Ex, class F>
std::string thrown_message(F&& f) {
  try {
    f();
  } catch (const Ex& e) {
    return e.what();
  }
  return "<no exception>";
}

inline bool starts_with(const std::string& text, const std::string& prefix) {
  return text.rfind(prefix, 0) == 0;
}

/// A status and the message of the error it came with ("" when none).
struct CallResult {
  modkit_status status;
  std::string message;
};

/// Calls a service the way a plugin does: `f(&error)` returns the status.
template <class F>
CallResult call(F&& f) {
  modkit_error* error = nullptr;
  const modkit_status status = f(&error);
  return CallResult{status, modkit::take_error_message(error)};
}

}  // namespace modkit::testing

#define CHECK_STARTS_WITH(text, prefix)                                                   \
  do {                                                                                    \
    const std::string modkit_text_ = (text);                                              \
    CHECK_MESSAGE(::modkit::testing::starts_with(modkit_text_, prefix), modkit_text_);    \
  } while (0)
