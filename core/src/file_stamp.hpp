// What stat(2) says about a plugin file: the key under which the registry cache and the loaded-library table keep it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace modkit::detail {

/// A file's identity and last change, as stat(2) (symlinks followed) reports
/// them. Two equal stamps mean the same file, unchanged (see settled()).
struct FileStamp {
  uint64_t device = 0;
  uint64_t inode = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;  ///< last change of the content, ns since the epoch
  int64_t ctime_ns = 0;  ///< last change of the inode (content, mode, owner, times set by hand)

  /// stat(path); nullopt when it fails.
  static std::optional<FileStamp> of(const std::string& path);
  /// "size N, modified YYYY-MM-DD HH:MM:SS.nnnnnnnnn UTC", for messages.
  std::string describe() const;
};

bool operator==(const FileStamp& a, const FileStamp& b);
inline bool operator!=(const FileStamp& a, const FileStamp& b) { return !(a == b); }

/// The clock file systems stamp changes with (CLOCK_REALTIME_COARSE), in ns
/// since the epoch: a change made after this call gets an mtime >= it.
int64_t file_clock_now_ns();

/// Whether `stamp` was last modified strictly before `now_ns` (a
/// file_clock_now_ns() taken before the stamp). A file modified in the same
/// clock tick could change again without changing its stamp (git's "racy
/// clean" case): such a file is scanned, but not cached, until it settles.
bool settled(const FileStamp& stamp, int64_t now_ns);

}  // namespace modkit::detail
