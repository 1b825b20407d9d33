// Plugin path safety: refuse code that a user other than root or the host's own user could have replaced.
#include "path_safety.hpp"

#include <boost/filesystem.hpp>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <sys/stat.h>

namespace fs = boost::filesystem;

namespace modkit::detail {
namespace {

// The reason `st` (of `path`) is unsafe, or "".
std::string unsafe_stat_reason(const struct stat& st, const std::string& path, uid_t uid) {
  const bool world_writable = (st.st_mode & S_IWOTH) != 0;
  const bool foreign = st.st_uid != 0 && st.st_uid != uid;
  if (!world_writable && !foreign) return "";
  std::string shown = resolved_path(path);
  if (shown.empty()) shown = path;
  if (world_writable) {
    char mode[16];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return "'" + shown + "' is world-writable (mode " + mode + ")";
  }
  return "'" + shown + "' is owned by uid " + std::to_string(st.st_uid) + ", expected root or uid " +
         std::to_string(uid);
}

FileStamp stamp_of(const struct stat& st) {
  FileStamp s;
  s.device = static_cast<uint64_t>(st.st_dev);
  s.inode = static_cast<uint64_t>(st.st_ino);
  s.size = static_cast<uint64_t>(st.st_size);
  s.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  s.ctime_ns = static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
  return s;
}

const std::string& memo_of(std::map<std::string, std::string>& memo, const std::string& key,
                           std::string (*compute)(const std::string&, uid_t), uid_t uid) {
  auto it = memo.find(key);
  if (it == memo.end()) it = memo.emplace(key, compute(key, uid)).first;
  return it->second;
}

std::string absolute_normal(const std::string& path) {
  return fs::absolute(path).lexically_normal().string();
}

PathMemo::Dir& dir_of(PathMemo& memo, const std::string& dir) {
  auto it = memo.dirs.find(dir);
  if (it == memo.dirs.end()) {
    PathMemo::Dir d;
    d.real = resolved_path(dir);
    try {
      d.moved = !d.real.empty() && d.real != absolute_normal(dir);
    } catch (const std::exception&) {
      d.moved = !d.real.empty() && d.real != dir;
    }
    it = memo.dirs.emplace(dir, std::move(d)).first;
  }
  return it->second;
}

// The first unsafe directory from `dir` up to and including `root`, or "".
std::string unsafe_chain(const std::string& dir, const std::string& root, uid_t uid, PathMemo& memo) {
  const std::string key = dir + '\n' + root;
  if (auto it = memo.chains.find(key); it != memo.chains.end()) return it->second;
  std::string why;
  try {
    const std::string top = fs::path(root).lexically_normal().string();
    fs::path d = fs::path(dir).lexically_normal();
    while (!d.empty()) {
      why = memo_of(memo.verdicts, d.string(), unsafe_path_reason, uid);
      if (!why.empty()) break;
      const std::string text = d.string();
      if (text == top || text + "/" == top || text.size() <= top.size() || !d.has_parent_path()) break;
      d = d.parent_path();
    }
  } catch (const std::exception&) {
    // a path Boost cannot take apart: leave it to the loader's own error
  }
  memo.chains.emplace(key, why);
  return why;
}

}  // namespace

std::string resolved_path(const std::string& path) {
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf) == nullptr) return "";
  return buf;
}

std::string unsafe_path_reason(const std::string& path, uid_t uid) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "";  // gone: the loader reports that itself
  return unsafe_stat_reason(st, path, uid);
}

PluginPath examine_plugin_path(const std::string& file, const std::string& root, uid_t uid, bool check,
                               PathMemo& memo) {
  PluginPath out;
  struct stat st {};
  if (::lstat(file.c_str(), &st) != 0) return out;  // gone: the loader reports that itself
  const auto slash = file.find_last_of('/');
  const std::string name = slash == std::string::npos ? file : file.substr(slash + 1);
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : file.substr(0, slash);
  if (S_ISLNK(st.st_mode) || name.empty() || name == "." || name == "..") {
    out.resolved = resolved_path(file);
    try {
      out.moved = !out.resolved.empty() && out.resolved != file && out.resolved != absolute_normal(file);
    } catch (const std::exception&) {
      out.moved = !out.resolved.empty() && out.resolved != file;
    }
    if (::stat(file.c_str(), &st) != 0) return out;
  } else {
    // not a symlink itself: where its directory really is, plus its name;
    // and every directory check is the same for its neighbours
    PathMemo::Dir& d = dir_of(memo, dir);
    if (!d.real.empty()) out.resolved = d.real == "/" ? "/" + name : d.real + "/" + name;
    out.moved = d.moved;
    out.stamp = stamp_of(st);
    if (!check) return out;
    if (out.unsafe = unsafe_stat_reason(st, file, uid); !out.unsafe.empty()) return out;
    if (d.checked_root.empty() || d.checked_root != root) {
      d.unsafe = d.real.empty() ? "" : memo_of(memo.verdicts, d.real, unsafe_path_reason, uid);
      if (d.unsafe.empty()) d.unsafe = unsafe_chain(dir, root, uid, memo);
      d.checked_root = root;
    }
    out.unsafe = d.unsafe;
    return out;
  }
  out.stamp = stamp_of(st);
  if (!check) return out;
  if (out.unsafe = unsafe_stat_reason(st, file, uid); !out.unsafe.empty()) return out;
  // the directory that really holds the code: whoever can write it can swap the file
  if (const auto cut = out.resolved.find_last_of('/'); cut != std::string::npos) {
    out.unsafe = memo_of(memo.verdicts, cut == 0 ? "/" : out.resolved.substr(0, cut), unsafe_path_reason, uid);
    if (!out.unsafe.empty()) return out;
  }
  // every directory the walk went through, from the file up to the search directory
  out.unsafe = unsafe_chain(dir, root, uid, memo);
  return out;
}

}  // namespace modkit::detail
