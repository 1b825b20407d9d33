// Runs a program as a subprocess and captures its exit code, stdout and stderr (for the CLI tests).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace modkit::test {

struct RunResult {
  int code = -1;  ///< the exit status, or 128 + signal when killed
  std::string out;
  std::string err;
};

/// Runs `argv` (argv[0] is the program path) with the current environment
/// minus MODKIT_PLUGIN_PATH and MODKIT_TEST_MARKER, plus `env`, in `cwd` ("" keeps ours).
RunResult run(const std::vector<std::string>& argv,
              const std::vector<std::pair<std::string, std::string>>& env = {}, const std::string& cwd = "");

/// A fresh directory under the system temp directory, removed with its contents.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

/// The whole content of a file ("" when missing).
std::string read_text(const std::string& path);

}  // namespace modkit::test
