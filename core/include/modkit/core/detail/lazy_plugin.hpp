// Plugin types known from a scan or the registry cache, whose library is loaded the first time a modifier is created.
#pragma once

#include <modkit/core/detail/file_stamp.hpp>
#include <modkit/core/detail/plugin_library.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace modkit::detail {

/// A plugin file whose valid types are known but whose library may not be
/// loaded in this process yet. The first resolve() loads it (through
/// LoadedLibraries, so a file is loaded once per process) and validates its
/// descriptors again.
///
/// Thread safety: resolve() may be called from several threads.
class LazyFile {
 public:
  /// Not loaded yet; `stamp` is the file as it was scanned (nullopt: unknown).
  LazyFile(std::string path, bool experimental, std::optional<FileStamp> stamp, HostFingerprint host);
  /// Already loaded here.
  LazyFile(std::string path, bool experimental, std::optional<FileStamp> stamp, HostFingerprint host, FileLoad load);
  LazyFile(const LazyFile&) = delete;
  LazyFile& operator=(const LazyFile&) = delete;

  const std::string& path() const { return path_; }
  bool experimental() const { return experimental_; }

  /// The type `expected` describes, with its library loaded and its
  /// descriptor validated; the library is loaded on the first call. When
  /// the file changed since it was scanned, cannot be loaded, or its
  /// descriptor no longer matches `expected`, returns nullptr and sets
  /// `failure` to the record to keep (stage open, resolve or validate).
  std::shared_ptr<const PluginModifierType> resolve(const ModifierInfo& expected, LoadRecord& failure);

 private:
  LoadRecord failure_record(const std::string& name, LoadStage stage, std::string reason) const;

  const std::string path_;
  const bool experimental_;
  const std::optional<FileStamp> stamp_;
  const HostFingerprint host_;
  std::mutex mutex_;
  bool attempted_ = false;
  std::string file_failure_;  // why the file could not be loaded at all ("" when it was)
  FileLoad load_;
  std::map<std::string, std::shared_ptr<const PluginModifierType>> verified_;  // by name
};

/// A type in a registry: what is known of it, and the file that provides it.
struct LazyType {
  std::shared_ptr<LazyFile> file;
  ModifierInfo info;
};

/// What refresh() knows about one plugin file.
struct FileOutcome {
  std::vector<LoadRecord> records;                    ///< one per *Modifier name, or one file-level record
  std::vector<std::shared_ptr<const LazyType>> types;  ///< the valid ones, in record order
};

/// The outcome of a load made in this process (the library is loaded).
FileOutcome outcome_of_load(const FileLoad& load, const std::string& path, bool experimental,
                            const std::optional<FileStamp>& stamp, const HostFingerprint& host, RecordSource source);

/// The outcome of a scan made elsewhere (the scanner child, or the registry
/// cache): `types` are the infos of the `loaded` records; nothing is loaded.
FileOutcome outcome_of_scan(std::vector<LoadRecord> records, std::vector<ModifierInfo> types,
                            const std::string& path, bool experimental, const std::optional<FileStamp>& stamp,
                            const HostFingerprint& host, RecordSource source);

}  // namespace modkit::detail
