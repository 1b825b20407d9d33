// Plugin path safety (as ssh's StrictModes and sudo's plugin checks): who may have written the code we load.
#pragma once

#include "file_stamp.hpp"

#include <map>
#include <optional>
#include <string>
#include <sys/types.h>

namespace modkit::detail {

/// "" when `path` (symlinks followed) is neither world-writable nor owned by
/// a user other than root and `uid`; else the reason, naming the resolved
/// path: "'<path>' is world-writable (mode 0777)" or "'<path>' is owned by
/// uid N, expected root or uid M". A path that cannot be stat'ed yields "".
std::string unsafe_path_reason(const std::string& path, uid_t uid);

/// What one walk learnt about directories, so the files of one directory
/// cost one check and one resolution of it.
struct PathMemo {
  struct Dir {
    std::string real;  ///< realpath ("" when it cannot be resolved)
    bool moved = false;  ///< `real` is not just the directory made absolute: a symlink leads elsewhere
    std::string checked_root;  ///< the search directory `unsafe` was found for ("" when not yet)
    std::string unsafe;        ///< for a file here that is not a symlink: the first unsafe directory
  };
  std::map<std::string, Dir> dirs;
  std::map<std::string, std::string> verdicts;  ///< directory -> unsafe_path_reason ("" when safe)
  std::map<std::string, std::string> chains;    ///< directory + '\n' + root -> first unsafe reason up to root
};

/// What refresh() needs to know about one plugin file before reading it.
struct PluginPath {
  std::optional<FileStamp> stamp;  ///< the file, symlinks followed; nullopt when it cannot be stat'ed
  std::string resolved;            ///< with every symlink resolved; "" when it cannot be resolved
  bool moved = false;              ///< `resolved` is not just the path made absolute: a symlink leads elsewhere
  std::string unsafe;              ///< why it may not be loaded; "" when it may (or was not checked)
};

/// Examines a plugin file found below the search directory `root` with one
/// lstat (two for a symlink). With `check`, the file, the directory that
/// really holds it, and every directory from the file's parent up to and
/// including `root` must be safe (see unsafe_path_reason); directory
/// verdicts and resolutions are kept in `memo`. Never throws.
PluginPath examine_plugin_path(const std::string& file, const std::string& root, uid_t uid, bool check,
                               PathMemo& memo);

/// `path` with every symlink resolved (realpath), or "" when it cannot be resolved.
std::string resolved_path(const std::string& path);

}  // namespace modkit::detail
