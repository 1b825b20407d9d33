// The process-wide table of loaded plugin files: one load per unchanged file, serialized because it runs plugin code.
#include "loaded_libraries.hpp"

namespace modkit::detail {

LoadedLibraries& LoadedLibraries::instance() {
  // never destroyed: modifiers that outlive main() still reach their types
  static auto* table = new LoadedLibraries();
  return *table;
}

std::string LoadedLibraries::key(const std::string& path, bool experimental, const FileStamp& stamp,
                                 const HostFingerprint& host) {
  return path + '\n' + std::to_string(stamp.device) + ':' + std::to_string(stamp.inode) + ':' +
         std::to_string(stamp.size) + ':' + std::to_string(stamp.mtime_ns) + ':' + std::to_string(stamp.ctime_ns) +
         ':' + (experimental ? "x" : "m") + ':' + host.torch_version;
}

std::optional<FileLoad> LoadedLibraries::find(const std::string& path, bool experimental, const FileStamp& stamp,
                                              const HostFingerprint& host) {
  const std::string k = key(path, experimental, stamp, host);
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto it = loaded_.find(k); it != loaded_.end()) return it->second;
  return std::nullopt;
}

FileLoad LoadedLibraries::load(const std::string& path, bool experimental, const std::optional<FileStamp>& stamp,
                               const HostFingerprint& host) {
  const std::string k = stamp ? key(path, experimental, *stamp, host) : "";
  std::lock_guard<std::mutex> lock(mutex_);
  if (stamp) {
    if (auto it = loaded_.find(k); it != loaded_.end()) return it->second;
  }
  FileLoad load = load_plugin_file(path, experimental, host);
  if (stamp && !load.types.empty()) loaded_.emplace(k, load);
  return load;
}

}  // namespace modkit::detail
