// Plugin types known from a scan or the registry cache, whose library is loaded the first time a modifier is created.
#pragma once

#include "cache_format.hpp"
#include "file_stamp.hpp"
#include "plugin_library.hpp"

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
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

/// A type in a registry: its name, the file that provides it, and its
/// metadata, known or still encoded in the registry cache entry it came
/// from (decoded the first time it is asked for). Immutable once made.
class LazyType {
 public:
  /// Known metadata (shared with where it was read: never copied).
  LazyType(std::shared_ptr<LazyFile> file, std::shared_ptr<const ModifierInfo> info);
  /// The `index`-th type of a registry cache entry, named `name` (which
  /// lives in `entry`, e.g. its record's name).
  LazyType(std::shared_ptr<LazyFile> file, std::string_view name, std::shared_ptr<const CachedFile> entry,
           size_t index);

  std::string_view name() const { return name_; }
  const std::shared_ptr<LazyFile>& file() const { return file_; }
  /// The metadata. Throws ValueError when its registry cache entry does not
  /// decode (a cache damaged in a way its checksum did not catch).
  const ModifierInfo& info() const;

 private:
  std::shared_ptr<LazyFile> file_;
  std::string_view name_;                     // inside info_ or entry_, which it keeps alive
  std::shared_ptr<const ModifierInfo> info_;  // known, or
  std::shared_ptr<const CachedFile> entry_;   // where it is encoded
  size_t index_ = 0;
};

/// What refresh() knows about one plugin file.
struct FileOutcome {
  std::vector<LoadRecord> records;                    ///< one per *Modifier name, or one file-level record
  std::vector<std::shared_ptr<const LazyType>> types;  ///< the valid ones, in record order
  /// When set, `records` is empty and the records are this registry cache
  /// entry's, all loaded and still encoded (decoded when asked for).
  std::shared_ptr<const CachedFile> encoded_records;

  /// `records`, decoding encoded_records first when set.
  std::vector<LoadRecord>& decoded_records();
};

/// The records of a file refused before any of its code ran: one per
/// *Modifier name its symbol table lists (read without loading it), or one
/// file-level record.
std::vector<LoadRecord> refusal_records(const std::string& path, bool experimental, LoadStage stage,
                                        const std::string& reason);

/// The outcome of a load made in this process (the library is loaded).
FileOutcome outcome_of_load(const FileLoad& load, const std::string& path, bool experimental,
                            const std::optional<FileStamp>& stamp, const HostFingerprint& host, RecordSource source);

/// The outcome of a scan made by the scanner child: `types` are the infos
/// of the `loaded` records; nothing is loaded.
FileOutcome outcome_of_scan(std::vector<LoadRecord> records, std::vector<ModifierInfo> types,
                            const std::string& path, bool experimental, const std::optional<FileStamp>& stamp,
                            const HostFingerprint& host);

/// The outcome a registry cache entry records (source: cache); its types
/// stay encoded until used, nothing is loaded.
FileOutcome outcome_of_cache(const std::shared_ptr<const CachedFile>& entry, const std::optional<FileStamp>& stamp,
                             const HostFingerprint& host);

}  // namespace modkit::detail
