// The registry cache file: XDG location, host key, safe and checked reading, merge-and-rename updates.
#include <modkit/core/atomic_file.hpp>
#include "core_library.hpp"
#include "path_safety.hpp"
#include "registry_cache.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace modkit::detail {
namespace {

constexpr const char* kCacheFormat = "1";

bool is_absolute(const char* p) { return p != nullptr && p[0] == '/'; }

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

std::string home_dir() {
  if (const std::string home = env("HOME"); is_absolute(home.c_str())) return home;
  if (const passwd* pw = ::getpwuid(::geteuid()); pw != nullptr && is_absolute(pw->pw_dir)) return pw->pw_dir;
  return "";
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// The fingerprint part of the key: what decides which cache file a host uses.
std::string fingerprint_of(const HostFingerprint& host) {
  return "abi " + std::to_string(host.abi_major) + "." + std::to_string(host.abi_minor) + "; torch " +
         (host.torch_version.empty() ? std::string("any") : host.torch_version) + "; cxx11 " +
         std::to_string(host.cxx11_abi);
}

// Creates `dir` and its missing parents (mode 0700, as XDG asks). Returns "" or why not.
std::string make_directories(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) return S_ISDIR(st.st_mode) ? "" : "'" + dir + "' is not a directory";
  const auto slash = dir.find_last_of('/');
  if (slash != std::string::npos && slash > 0) {
    if (std::string why = make_directories(dir.substr(0, slash)); !why.empty()) return why;
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return "cannot create '" + dir + "': " + std::strerror(errno);
  }
  return "";
}

// The whole file, read into memory of our own (never a shared mapping: a
// file truncated while a lazily decoded entry still points into it would
// fault), or why it cannot be read. The memory is mapped populated: one
// system call instead of a page fault per page.
CacheBytes read_whole(const std::string& path, std::optional<FileStamp>& stamp, std::string& why) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    why = errno == ENOENT ? "" : std::strerror(errno);
    return nullptr;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    why = "not a regular file";
    ::close(fd);
    return nullptr;
  }
  stamp = FileStamp::of(path);
  const size_t size = static_cast<size_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    return cache_bytes("");
  }
  void* memory = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (memory == MAP_FAILED) {
    why = std::string("cannot allocate ") + std::to_string(size) + " bytes: " + std::strerror(errno);
    ::close(fd);
    return nullptr;
  }
  size_t got = 0;
  while (got < size) {
    const ssize_t n = ::read(fd, static_cast<char*>(memory) + got, size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  // a file that shrank while read is caught by the decoder's size check
  auto* view = new std::string_view(static_cast<const char*>(memory), got);
  return CacheBytes(view, [memory, size](const std::string_view* v) {
    ::munmap(memory, size);
    delete v;
  });
}

}  // namespace

std::string cache_host_key(const HostFingerprint& host) {
  // a rebuilt core may validate differently: its own stamp is part of the key
  static const std::string core = [] {
    const std::string& path = core_library_path();
    if (path.empty()) return std::string();
    std::string text = "; core " + path;
    if (auto stamp = FileStamp::of(path)) text += " " + std::to_string(stamp->size) + " " + std::to_string(stamp->mtime_ns);
    return text;
  }();
  return "modkit registry cache " + std::string(kCacheFormat) + "; " + fingerprint_of(host) + core;
}

std::string RegistryCache::directory(const FactoryOptions& options) {
  if (options.cache == CacheMode::Off) return "";
  if (!options.cache_dir.empty()) return options.cache_dir;
  if (const std::string off = env("MODKIT_NO_CACHE"); !off.empty() && off != "0") return "";
  if (const std::string dir = env("MODKIT_CACHE_DIR"); !dir.empty()) {
    if (is_absolute(dir.c_str())) return dir;
    spdlog::warn("ignoring MODKIT_CACHE_DIR '{}': expected an absolute directory", dir);
  }
  if (const std::string xdg = env("XDG_CACHE_HOME"); is_absolute(xdg.c_str())) return xdg + "/modkit";
  if (const std::string home = home_dir(); !home.empty()) return home + "/.cache/modkit";
  return "";
}

std::shared_ptr<RegistryCache> RegistryCache::open(const FactoryOptions& options, const HostFingerprint& host) {
  const std::string dir = directory(options);
  if (dir.empty()) return nullptr;
  char name[48];
  std::snprintf(name, sizeof name, "/registry-%016llx.bin", static_cast<unsigned long long>(fnv1a(fingerprint_of(host))));
  return std::make_shared<RegistryCache>(dir + name, cache_host_key(host), options.cache == CacheMode::Rebuild);
}

RegistryCache::RegistryCache(std::string file, std::string host_key, bool rebuild)
    : file_(std::move(file)), host_key_(std::move(host_key)), rebuild_(rebuild),
      entries_(std::make_shared<CacheEntries>()) {}

std::string RegistryCache::key_of(const std::string& path, bool experimental) {
  return path + (experimental ? "\nx" : "\nm");
}

std::optional<CacheImage> RegistryCache::read_image(std::optional<FileStamp>& stamp, std::string& unsafe) const {
  // the cache decides which plugins skip the crash-isolating scan: only this
  // user (or root) may have written it
  const std::string dir = file_.substr(0, file_.find_last_of('/'));
  stamp = FileStamp::of(file_);
  unsafe = unsafe_path_reason(dir, ::geteuid());
  if (!unsafe.empty()) {
    spdlog::warn("not using registry cache '{}': {}", file_, unsafe);
    return std::nullopt;
  }
  std::string why;
  CacheBytes bytes = read_whole(file_, stamp, why);
  if (!bytes) {
    if (!why.empty()) spdlog::warn("ignoring registry cache '{}': {}; it will be rebuilt", file_, why);
    return std::nullopt;  // none yet, or unreadable
  }
  if (std::string unsafe_file = unsafe_path_reason(file_, ::geteuid()); !unsafe_file.empty()) {
    spdlog::warn("ignoring registry cache '{}': {}; it will be rebuilt", file_, unsafe_file);
    return std::nullopt;
  }
  try {
    CacheImage image = decode_cache(std::move(bytes), file_);
    if (image.host_key != host_key_) {
      spdlog::debug("registry cache '{}' was written for another host ({}); it will be rebuilt", file_, image.host_key);
      return std::nullopt;
    }
    return image;
  } catch (const std::exception& e) {
    spdlog::warn("ignoring {}; it will be rebuilt", e.what());
    return std::nullopt;
  }
}

std::optional<CacheImage> RegistryCache::read() const {
  std::optional<FileStamp> stamp;
  std::string unsafe;
  return read_image(stamp, unsafe);
}

namespace {

// The order of CacheEntries: by path, then main before experimental.
bool key_before(const std::string& path_a, bool experimental_a, const std::string& path_b, bool experimental_b) {
  return path_a != path_b ? path_a < path_b : experimental_a < experimental_b;
}

bool entry_before(const std::shared_ptr<const CachedFile>& a, const std::shared_ptr<const CachedFile>& b) {
  return key_before(a->path, a->experimental, b->path, b->experimental);
}

// Sorted for lookup(); of two entries for one file (a hand-made cache) the first is kept.
CacheEntries sorted_entries(CacheEntries entries) {
  if (!std::is_sorted(entries.begin(), entries.end(), entry_before)) {  // as written: sorted
    std::stable_sort(entries.begin(), entries.end(), entry_before);
  }
  auto same = [](const auto& a, const auto& b) { return !entry_before(a, b) && !entry_before(b, a); };
  entries.erase(std::unique(entries.begin(), entries.end(), same), entries.end());
  return entries;
}

}  // namespace

void RegistryCache::reload_locked() {
  if (read_once_ && FileStamp::of(file_) == read_stamp_) return;
  read_once_ = true;
  read_stamp_.reset();
  auto entries = std::make_shared<CacheEntries>();
  if (auto image = read_image(read_stamp_, unsafe_)) {
    // one allocation for every entry, each shared through it
    auto files = std::make_shared<std::vector<CachedFile>>(std::move(image->files));
    entries->reserve(files->size());
    for (const auto& f : *files) entries->push_back(std::shared_ptr<const CachedFile>(files, &f));
    *entries = sorted_entries(std::move(*entries));
  }
  entries_ = std::move(entries);
}

std::shared_ptr<const CacheEntries> RegistryCache::snapshot() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (rebuild_) return std::make_shared<CacheEntries>();
  try {
    reload_locked();
  } catch (const std::exception& e) {
    spdlog::warn("ignoring registry cache '{}': {}", file_, e.what());
    entries_ = std::make_shared<CacheEntries>();
  }
  return entries_;
}

std::shared_ptr<const CachedFile> RegistryCache::lookup(const CacheEntries& entries, const std::string& path,
                                                        bool experimental, const FileStamp& stamp) {
  auto it = std::partition_point(entries.begin(), entries.end(), [&](const std::shared_ptr<const CachedFile>& e) {
    return key_before(e->path, e->experimental, path, experimental);
  });
  if (it == entries.end() || (*it)->path != path || (*it)->experimental != experimental || (*it)->stamp != stamp) {
    return nullptr;
  }
  return *it;
}

void RegistryCache::update(std::vector<CachedFile> fresh, const std::vector<std::string>& forget) {
  if (fresh.empty() && forget.empty()) return;
  std::lock_guard<std::mutex> lock(mutex_);
  try {
    reload_locked();  // keep what other processes wrote since
    if (!unsafe_.empty()) return;  // said when read
    // fresh entries first: they replace what the file had for the same plugin file
    CacheEntries merged;
    for (auto& f : fresh) merged.push_back(std::make_shared<const CachedFile>(std::move(f)));
    for (const auto& entry : *entries_) {
      bool dropped = false;
      for (const auto& path : forget) dropped = dropped || entry->path == path;
      // a file that changed or vanished: its entry can never match again
      const auto now = FileStamp::of(entry->path);
      if (!dropped && now && *now == entry->stamp) merged.push_back(entry);
    }
    auto sorted = std::make_shared<CacheEntries>(sorted_entries(std::move(merged)));
    CacheImage image;
    image.host_key = host_key_;
    for (const auto& entry : *sorted) image.files.push_back(*entry);
    const std::string bytes = encode_cache(image);
    const std::string dir = file_.substr(0, file_.find_last_of('/'));
    if (std::string why = make_directories(dir); !why.empty()) {
      spdlog::warn("cannot write registry cache '{}': {}", file_, why);
      return;
    }
    write_atomically(file_, bytes, "cannot write registry cache '" + file_ + "': ");
    ::chmod(file_.c_str(), 0644);  // never group- or world-writable, whatever the umask (see reload_locked)
    read_stamp_ = FileStamp::of(file_);
    entries_ = std::move(sorted);
  } catch (const std::exception& e) {
    spdlog::warn("{}", e.what());
  }
}

}  // namespace modkit::detail
