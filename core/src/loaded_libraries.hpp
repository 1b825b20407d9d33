// The plugin files loaded into this process: each loaded once while unchanged, none ever unloaded.
#pragma once

#include "file_stamp.hpp"
#include "plugin_library.hpp"

#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace modkit::detail {

/// Process-wide: what load_plugin_file() gave for each file loaded here,
/// keyed by path, registry, host LibTorch version and file stamp. Only loads
/// that yielded a valid type are kept (the others are retried); libraries
/// are never unloaded (see PluginLibrary).
///
/// Thread safety: every member may be called from several threads; loads
/// run one at a time, since they run plugin code (static constructors).
class LoadedLibraries {
 public:
  static LoadedLibraries& instance();

  /// The earlier load of `path` if the file still has `stamp`.
  std::optional<FileLoad> find(const std::string& path, bool experimental, const FileStamp& stamp,
                               const HostFingerprint& host);

  /// Loads and validates `path` in this process, or returns the earlier
  /// load when the file still has `stamp` (nullopt: always load). Never throws.
  FileLoad load(const std::string& path, bool experimental, const std::optional<FileStamp>& stamp,
                const HostFingerprint& host);

 private:
  LoadedLibraries() = default;
  static std::string key(const std::string& path, bool experimental, const FileStamp& stamp,
                         const HostFingerprint& host);

  std::mutex mutex_;
  std::map<std::string, FileLoad> loaded_;
};

}  // namespace modkit::detail
