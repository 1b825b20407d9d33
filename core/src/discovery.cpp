// The plugin directory walk: sorted *.so files, main tree first, then the experimental/ subtree.
#include <modkit/core/discovery.hpp>

#include <boost/filesystem.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace fs = boost::filesystem;

namespace modkit {

std::vector<std::string> plugin_files_in_tree(const std::string& root, const std::string& skip) {
  std::vector<std::string> files;
  const fs::path skip_path(skip);
  boost::system::error_code ec;
  if (!fs::is_directory(root, ec)) return files;
  for (fs::recursive_directory_iterator it(root, fs::directory_options::follow_directory_symlink, ec), end;
       !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    if (!skip_path.empty() && p == skip_path) {
      it.disable_recursion_pending();
      continue;
    }
    boost::system::error_code type_ec;
    if (p.extension() == ".so" && fs::is_regular_file(p, type_ec)) files.push_back(p.string());
  }
  // a walk that stops early still returns what it found: one unreadable
  // subdirectory must not hide the plugins already seen
  if (ec) spdlog::warn("error while walking '{}': {}", root, ec.message());
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<PluginFile> discover_plugin_files(const std::string& dir) {
  std::vector<PluginFile> out;
  const fs::path root(dir);
  const fs::path experimental = root / "experimental";
  for (auto& path : plugin_files_in_tree(dir, experimental.string())) {
    out.push_back({std::move(path), false, dir});
  }
  for (auto& path : plugin_files_in_tree(experimental.string())) {
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
