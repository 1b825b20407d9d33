// The registry cache on disk: where it lives, what it is valid for, reading it (never trusting it) and updating it atomically.
#pragma once

#include "cache_format.hpp"
#include "plugin_library.hpp"
#include <modkit/core/factory.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace modkit::detail {

/// Cached outcomes by file, sorted by (path, experimental): see RegistryCache::lookup().
using CacheEntries = std::vector<std::shared_ptr<const CachedFile>>;

/// One registry cache file, shared by every factory (and process) with the
/// same host fingerprint. Entries are valid for one plugin file's stamp and
/// one host key (ABI version, LibTorch fingerprint, the core library's own
/// build); anything else is a miss. A cache file that is unreadable,
/// corrupt, truncated, written for another host or writable by another user
/// is ignored (and replaced by the next update), never trusted.
///
/// Thread safety: every member may be called from several threads.
class RegistryCache {
 public:
  /// The cache the options ask for: nullptr when it is off (CacheMode::Off,
  /// or MODKIT_NO_CACHE without an explicit cache_dir) or no directory can
  /// be found. Nothing is read or created yet.
  static std::shared_ptr<RegistryCache> open(const FactoryOptions& options, const HostFingerprint& host);

  /// The cache directory the options ask for ("" when the cache is off):
  /// cache_dir, else MODKIT_CACHE_DIR (absolute), else $XDG_CACHE_HOME/modkit
  /// (absolute), else $HOME/.cache/modkit.
  static std::string directory(const FactoryOptions& options);

  RegistryCache(std::string file, std::string host_key, bool rebuild);

  /// The cache file.
  const std::string& file() const { return file_; }
  /// What entries are valid for.
  const std::string& host_key() const { return host_key_; }
  /// CacheMode::Rebuild: snapshot() is empty, update() writes.
  bool rebuild() const { return rebuild_; }

  /// The entries on disk, read again only when the file changed since the
  /// last read. Empty (and the reason logged) when the file is missing,
  /// unsafe, corrupt or for another host. Never throws.
  std::shared_ptr<const CacheEntries> snapshot();

  /// Reads the file now, bypassing the snapshot: the image when it is
  /// intact, safe and for this host; nullopt otherwise (the reason logged).
  /// For one-shot readers that want the entries to keep. Never throws.
  std::optional<CacheImage> read() const;

  /// The entry for `path` in `entries` if it was made for the same registry
  /// and the file's stamp is still `stamp`.
  static std::shared_ptr<const CachedFile> lookup(const CacheEntries& entries, const std::string& path,
                                                   bool experimental, const FileStamp& stamp);

  /// Adds or replaces `fresh` entries and drops those of `forget` (paths,
  /// both registries), over the current file (so entries other processes
  /// wrote survive); entries whose file changed or vanished are pruned. The
  /// file is written atomically. Never throws: failures are logged.
  void update(std::vector<CachedFile> fresh, const std::vector<std::string>& forget = {});

  /// The map key of an entry.
  static std::string key_of(const std::string& path, bool experimental);

 private:
  // Reads the file if its stamp changed; under mutex_.
  void reload_locked();
  // read() that also reports the stamp read and why the directory is unsafe ("" when safe).
  std::optional<CacheImage> read_image(std::optional<FileStamp>& stamp, std::string& unsafe) const;

  const std::string file_;
  const std::string host_key_;
  const bool rebuild_;
  std::mutex mutex_;
  std::optional<FileStamp> read_stamp_;  // of the file last read (or written)
  bool read_once_ = false;
  std::string unsafe_;  // why the directory may not be used ("" when it may)
  std::shared_ptr<const CacheEntries> entries_;
};

/// The host key of `host`: ABI version, LibTorch fingerprint, cache format
/// and the stamp of the modkit_core library in use (a rebuilt core may
/// validate differently).
std::string cache_host_key(const HostFingerprint& host);

}  // namespace modkit::detail
