// Plugin path safety: refuse code that a user other than root or the host's own user could have replaced.
#include <modkit/core/detail/path_safety.hpp>

#include <boost/filesystem.hpp>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <sys/stat.h>

namespace fs = boost::filesystem;

namespace modkit::detail {

std::string resolved_path(const std::string& path) {
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf) == nullptr) return "";
  return buf;
}

std::string unsafe_path_reason(const std::string& path, uid_t uid) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "";  // gone: the loader reports that itself
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

std::string check_plugin_path(const std::string& file, const std::string& root, uid_t uid, SafeDirs* memo) {
  auto check_dir = [&](const std::string& dir) {
    if (memo == nullptr) return unsafe_path_reason(dir, uid);
    auto it = memo->verdicts.find(dir);
    if (it == memo->verdicts.end()) it = memo->verdicts.emplace(dir, unsafe_path_reason(dir, uid)).first;
    return it->second;
  };
  try {
    if (std::string why = unsafe_path_reason(file, uid); !why.empty()) return why;
    // the directory that really holds the code: whoever can write it can swap the file
    if (const std::string real = resolved_path(file); !real.empty()) {
      if (std::string why = check_dir(fs::path(real).parent_path().string()); !why.empty()) {
        return why;
      }
    }
    // every directory the walk went through, from the file up to the search directory
    const std::string top = fs::path(root).lexically_normal().string();
    fs::path dir = fs::path(file).lexically_normal().parent_path();
    while (!dir.empty()) {
      if (std::string why = check_dir(dir.string()); !why.empty()) return why;
      std::string d = dir.string();
      if (d == top || d + "/" == top || d.size() <= top.size() || !dir.has_parent_path()) break;
      dir = dir.parent_path();
    }
  } catch (const std::exception&) {
    // a path Boost cannot take apart: leave it to the loader's own error
  }
  return "";
}

}  // namespace modkit::detail
