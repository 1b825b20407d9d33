// The plugin directory walk: sorted *.so files, main tree first, then the experimental/ subtree.
#include <modkit/core/discovery.hpp>

#include <dirent.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <utility>

namespace modkit {

namespace {

std::string join(const std::string& dir, const char* name) {
  return dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
}

bool is_plugin_name(const char* name) {
  const size_t n = std::strlen(name);
  return n > 3 && std::strcmp(name + n - 3, ".so") == 0;
}

// Adds the *.so regular files below `dir` (symlinks followed) to `files`;
// `seen` holds the directories entered, so a symlink cycle is walked once.
void walk(const std::string& dir, const std::string& skip, std::set<std::pair<dev_t, ino_t>>& seen,
          std::vector<std::string>& files) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !seen.emplace(st.st_dev, st.st_ino).second) return;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    // one unreadable subdirectory must not hide the plugins beside it
    spdlog::warn("cannot read plugin directory '{}': {}", dir, std::strerror(errno));
    return;
  }
  std::vector<std::string> subdirs;
  while (const dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    unsigned char type = e->d_type;
    const bool plugin_name = is_plugin_name(e->d_name);
    if (type != DT_DIR && type != DT_REG && type != DT_UNKNOWN && type != DT_LNK) continue;
    if (type == DT_REG && !plugin_name) continue;
    std::string path = join(dir, e->d_name);
    // readdir names the type; only a symlink (or a file system that does not say) costs a stat
    if (type == DT_LNK || type == DT_UNKNOWN) {
      if (::stat(path.c_str(), &st) != 0) continue;
      type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
    }
    if (type == DT_DIR) {
      if (path != skip) subdirs.push_back(std::move(path));
    } else if (type == DT_REG && plugin_name) {
      files.push_back(std::move(path));
    }
  }
  ::closedir(d);
  // in sorted order, so which path reaches a directory seen twice does not depend on readdir
  std::sort(subdirs.begin(), subdirs.end());
  for (const auto& sub : subdirs) walk(sub, skip, seen, files);
}

}  // namespace

std::vector<std::string> plugin_files_in_tree(const std::string& root, const std::string& skip) {
  std::vector<std::string> files;
  std::set<std::pair<dev_t, ino_t>> seen;
  struct stat st {};
  if (::stat(root.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return files;
  walk(root, skip, seen, files);
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<PluginFile> discover_plugin_files(const std::string& dir) {
  std::vector<PluginFile> out;
  const std::string experimental = join(dir, "experimental");
  for (auto& path : plugin_files_in_tree(dir, experimental)) {
    out.push_back({std::move(path), false, dir});
  }
  for (auto& path : plugin_files_in_tree(experimental)) {
    out.push_back({std::move(path), true, dir});
  }
  return out;
}

std::vector<PluginFile> discover_plugin_files(const std::vector<std::string>& dirs) {
  std::vector<PluginFile> out;
  for (const auto& dir : dirs) {
    auto files = discover_plugin_files(dir);
    out.insert(out.end(), std::make_move_iterator(files.begin()), std::make_move_iterator(files.end()));
  }
  return out;
}

}  // namespace modkit
