// Plugin path safety (as ssh's StrictModes and sudo's plugin checks): who may have written the code we load.
#pragma once

#include <map>
#include <string>
#include <sys/types.h>

namespace modkit::detail {

/// "" when `path` (symlinks followed) is neither world-writable nor owned by
/// a user other than root and `uid`; else the reason, naming the resolved
/// path: "'<path>' is world-writable (mode 0777)" or "'<path>' is owned by
/// uid N, expected root or uid M". A path that cannot be stat'ed yields "".
std::string unsafe_path_reason(const std::string& path, uid_t uid);

/// Directories already checked during one walk (path -> reason, "" when
/// safe), so the files of one directory cost one check of it.
struct SafeDirs {
  std::map<std::string, std::string> verdicts;
};

/// Checks a plugin file found below the search directory `root`: the file,
/// the directory that really holds it (after symlinks), and every directory
/// from the file's parent up to and including `root`. Returns the first
/// reason, or "" when every one is safe. Directory verdicts are kept in
/// `memo` when given. Never throws.
std::string check_plugin_path(const std::string& file, const std::string& root, uid_t uid, SafeDirs* memo = nullptr);

/// `path` with every symlink resolved (realpath), or "" when it cannot be resolved.
std::string resolved_path(const std::string& path);

}  // namespace modkit::detail
