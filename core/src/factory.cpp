// ModifierFactory: the plugin directory walk, registries with first-wins names, and create precedence.
#include <modkit/core/detail/elf.hpp>
#include <modkit/core/detail/path_safety.hpp>
#include <modkit/core/detail/plugin_library.hpp>
#include <modkit/core/detail/scanner.hpp>
#include <modkit/core/detail/text.hpp>
#include <modkit/core/discovery.hpp>
#include <modkit/core/errors.hpp>
#include <modkit/core/factory.hpp>
#include <modkit/core/plugin_modifier.hpp>

#include <boost/filesystem.hpp>
#include <dlfcn.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <set>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace fs = boost::filesystem;

namespace modkit {

using TypePtr = std::shared_ptr<const detail::PluginModifierType>;

struct ModifierFactory::Registry {
  bool loaded = false;
  std::map<std::string, TypePtr> main;
  std::map<std::string, TypePtr> experimental;
  std::map<std::string, Constructor> registered;
  std::vector<LoadRecord> records;
  std::map<std::string, LoadRecord> errors;

  void add_records(const std::vector<LoadRecord>& more) {
    for (const auto& r : more) {
      records.push_back(r);
      if (!r.ok() && r.stage != LoadStage::Shadowed) errors.emplace(r.name, r);
    }
  }
};

namespace {

// Libraries stay loaded for the life of the process (unloading code that
// links LibTorch is not safe). A file that loaded is not scanned again while
// it is unchanged (same inode, size and mtime); one that failed is retried.
class LibraryCache {
 public:
  static LibraryCache& instance() {
    static auto* cache = new LibraryCache();  // never destroyed: see above
    return *cache;
  }
  // Whether `path` is loaded and unchanged since (so it needs no scan).
  bool has(const std::string& path, bool experimental, const detail::HostFingerprint& host) {
    bool has_stat = false;
    const std::string k = key(path, experimental, host, has_stat);
    std::lock_guard<std::mutex> lock(mutex_);
    return has_stat && loaded_.count(k) != 0;
  }
  detail::FileLoad load(const std::string& path, bool experimental, const detail::HostFingerprint& host) {
    bool has_stat = false;
    const std::string key = this->key(path, experimental, host, has_stat);
    // loading runs plugin code (static constructors): one file at a time
    std::lock_guard<std::mutex> lock(mutex_);
    if (has_stat) {
      if (auto it = loaded_.find(key); it != loaded_.end()) return it->second;
    }
    detail::FileLoad load = detail::load_plugin_file(path, experimental, host);
    if (has_stat && !load.types.empty()) loaded_.emplace(key, load);
    return load;
  }

 private:
  static std::string key(const std::string& path, bool experimental, const detail::HostFingerprint& host,
                         bool& has_stat) {
    struct stat st {};
    has_stat = ::stat(path.c_str(), &st) == 0;
    return path + '\n' + std::to_string(st.st_dev) + ':' + std::to_string(st.st_ino) + ':' +
           std::to_string(st.st_size) + ':' + std::to_string(st.st_mtim.tv_sec) + '.' +
           std::to_string(st.st_mtim.tv_nsec) + ':' + (experimental ? "x" : "m") + ':' + host.torch_version;
  }

  std::mutex mutex_;
  std::map<std::string, detail::FileLoad> loaded_;
};

void merge(std::map<std::string, TypePtr>& into, std::vector<LoadRecord>& records,
           const detail::FileLoad& load) {
  for (auto record : load.records) {
    if (record.ok() && into.count(record.name) != 0) {
      const std::string first = into.at(record.name)->library->path();
      record.stage = LoadStage::Shadowed;
      record.reason = "shadowed by '" + first + "', which provides the same name first";
      spdlog::warn("'{}' in '{}' is shadowed by '{}' (first wins)", record.name, record.file, first);
    }
    records.push_back(std::move(record));
  }
  for (const auto& type : load.types) into.emplace(type->info.name, type);
}

// A file refused before any of its code ran: one record per *Modifier name
// its symbol table lists (read without loading it), or one file-level record.
detail::FileLoad refused(const std::string& path, bool experimental, LoadStage stage, const std::string& reason) {
  detail::FileLoad out;
  std::vector<std::string> names;
  try {
    for (const auto& sym : detail::read_elf(path).symbols) {
      const std::string suffix = "Modifier";
      if (sym.name.size() >= suffix.size() &&
          sym.name.compare(sym.name.size() - suffix.size(), suffix.size(), suffix) == 0) {
        names.push_back(sym.name);
      }
    }
  } catch (const std::exception&) {
    // unreadable: the file-level record below says why it was refused
  }
  if (names.empty()) names.push_back("");
  for (const auto& name : names) {
    LoadRecord r;
    r.name = name;
    r.file = path;
    r.stage = stage;
    r.reason = reason;
    r.experimental = experimental;
    spdlog::warn("{}", r.message());
    out.records.push_back(std::move(r));
  }
  return out;
}

ModifierEntry entry_of(const TypePtr& type, bool experimental) {
  ModifierEntry e;
  e.info = type->info;
  e.file = type->library->path();
  e.experimental = experimental;
  return e;
}

std::vector<std::string> split_path_list(const char* text) {
  std::vector<std::string> out;
  if (text == nullptr) return out;
  std::string current;
  for (const char* p = text;; ++p) {
    if (*p == ':' || *p == '\0') {
      if (!current.empty()) out.push_back(current);
      current.clear();
      if (*p == '\0') break;
    } else {
      current += *p;
    }
  }
  return out;
}

}  // namespace

std::string installed_plugin_dir() {
  // <libdir>/modkit/plugins beside this library, so an installed tree can move
  Dl_info info{};
  if (dladdr(reinterpret_cast<const void*>(&installed_plugin_dir), &info) != 0 && info.dli_fname != nullptr) {
    return (fs::path(info.dli_fname).parent_path() / "modkit" / "plugins").string();
  }
  return MODKIT_INSTALL_PLUGIN_DIR;
}

std::string FactoryOptions::default_torch_version() {
  return detail::HostFingerprint::current().torch_version;
}

ModifierFactory::ModifierFactory(FactoryOptions options)
    : options_(std::move(options)), registry_(std::make_unique<Registry>()) {
  search_dirs_ = options_.plugin_dirs;
  if (options_.use_environment) {
    for (auto& dir : split_path_list(std::getenv("MODKIT_PLUGIN_PATH"))) {
      // a relative entry loads whatever the working directory holds (the
      // LD_LIBRARY_PATH "::" trap): refuse it rather than resolve it
      if (!options_.allow_unsafe_paths && !fs::path(dir).is_absolute()) {
        LoadRecord r;
        r.file = dir;
        r.reason = "relative entry in MODKIT_PLUGIN_PATH, expected an absolute directory";
        path_records_.push_back(std::move(r));
        continue;
      }
      search_dirs_.push_back(dir);
    }
  }
  if (options_.use_install_dir) search_dirs_.push_back(installed_plugin_dir());
}

ModifierFactory::~ModifierFactory() = default;

ModifierFactory& ModifierFactory::instance() {
  static ModifierFactory factory;
  static std::once_flag refreshed;
  std::call_once(refreshed, [] { factory.refresh(); });
  return factory;
}

void ModifierFactory::refresh() {
  auto fresh = std::make_unique<Registry>();
  for (const auto& r : path_records_) spdlog::warn("{}", r.message());
  fresh->add_records(path_records_);
  std::vector<PluginFile> files;
  for (size_t i = 0; i < search_dirs_.size(); ++i) {
    const fs::path dir(search_dirs_[i]);
    boost::system::error_code ec;
    if (!fs::is_directory(dir, ec)) {
      if (i < options_.plugin_dirs.size()) {  // asked for explicitly: say so
        LoadRecord r;
        r.file = dir.string();
        r.reason = fs::exists(dir, ec) ? "not a directory" : "plugin directory does not exist";
        spdlog::warn("{}", r.message());
        fresh->add_records({r});
      } else {
        spdlog::debug("plugin directory '{}' does not exist", dir.string());
      }
      continue;
    }
    for (auto& file : discover_plugin_files(dir.string())) files.push_back(std::move(file));
  }
  const std::vector<detail::FileLoad> loads = load_files(files);
  for (size_t i = 0; i < files.size(); ++i) {
    std::vector<LoadRecord> records;
    merge(files[i].experimental ? fresh->experimental : fresh->main, records, loads[i]);
    fresh->add_records(records);
  }
  fresh->loaded = true;
  std::unique_lock lock(mutex_);
  fresh->registered = std::move(registry_->registered);
  registry_ = std::move(fresh);
}

bool ModifierFactory::loaded() const {
  std::shared_lock lock(mutex_);
  return registry_->loaded;
}

std::map<std::string, ModifierEntry> ModifierFactory::load_from_package(const std::string& dir,
                                                                        bool experimental) {
  std::map<std::string, TypePtr> types;
  std::vector<LoadRecord> records;
  const fs::path root(dir);
  boost::system::error_code ec;
  if (!fs::is_directory(root, ec)) {
    throw ValueError("plugin directory '" + dir + "' does not exist");
  }
  std::vector<PluginFile> files;
  for (auto& file : plugin_files_in_tree(dir, experimental ? "" : (root / "experimental").string())) {
    files.push_back({std::move(file), experimental, dir});
  }
  const std::vector<detail::FileLoad> loads = load_files(files);
  for (const auto& load : loads) merge(types, records, load);
  {
    std::unique_lock lock(mutex_);
    registry_->add_records(records);
  }
  std::map<std::string, ModifierEntry> out;
  for (const auto& [name, type] : types) out.emplace(name, entry_of(type, experimental));
  return out;
}

std::vector<detail::FileLoad> ModifierFactory::load_files(const std::vector<PluginFile>& files) const {
  auto host = detail::HostFingerprint::current();
  host.torch_version = options_.host_torch_version;
  std::vector<detail::FileLoad> out(files.size());
  std::vector<char> done(files.size(), 0);
  std::vector<std::string> resolved(files.size());

  // 1. who could have written this code? (no plugin code runs)
  const uid_t uid = ::geteuid();
  for (size_t i = 0; i < files.size(); ++i) {
    resolved[i] = detail::resolved_path(files[i].path);
    if (options_.allow_unsafe_paths) continue;
    if (std::string why = detail::check_plugin_path(files[i].path, files[i].dir, uid); !why.empty()) {
      out[i] = refused(files[i].path, files[i].experimental, LoadStage::Scan, why);
      done[i] = 1;
    }
  }

  // 2. the scanner child loads what this process has not loaded yet
  if (options_.isolation == Isolation::Subprocess) {
    std::vector<size_t> pending;
    for (size_t i = 0; i < files.size(); ++i) {
      if (!done[i] && !LibraryCache::instance().has(files[i].path, files[i].experimental, host)) pending.push_back(i);
    }
    const std::string scanner = pending.empty() ? "" : detail::find_plugin_scanner(options_.scanner_path);
    if (!pending.empty() && scanner.empty()) {
      spdlog::warn("no plugin scanner found ({}); loading plugins in this process without crash isolation",
                   options_.scanner_path.empty() ? "set MODKIT_PLUGIN_SCANNER or install modkit-plugin-scanner"
                                                 : "'" + options_.scanner_path + "' is not an executable file");
    } else if (!pending.empty()) {
      // a few children side by side for long lists (each child loads its
      // share sequentially); contiguous shares keep each child's work local
      const size_t hw = std::max(1u, std::thread::hardware_concurrency());
      const size_t workers = std::max<size_t>(1, std::min({pending.size() / 32, hw, size_t{4}}));
      std::vector<std::vector<detail::ScanResult>> results(workers);
      std::vector<std::string> failures(workers);
      auto share = [&](size_t w) {
        const size_t begin = pending.size() * w / workers, end = pending.size() * (w + 1) / workers;
        std::vector<detail::ScanRequest> requests;
        for (size_t k = begin; k < end; ++k) requests.push_back({files[pending[k]].path, files[pending[k]].experimental});
        try {
          results[w] = detail::scan_in_subprocess(scanner, requests, host.torch_version, options_.scan_timeout);
        } catch (const std::exception& e) {
          failures[w] = e.what();
        }
      };
      std::vector<std::thread> threads;
      for (size_t w = 1; w < workers; ++w) threads.emplace_back(share, w);
      share(0);
      for (auto& t : threads) t.join();
      for (size_t w = 0; w < workers; ++w) {
        if (!failures[w].empty()) {
          spdlog::warn("{}; loading plugins in this process without crash isolation", failures[w]);
          continue;
        }
        const size_t begin = pending.size() * w / workers;
        for (size_t k = 0; k < results[w].size(); ++k) {
          const size_t i = pending[begin + k];
          const auto& result = results[w][k];
          if (!result.complete) {
            out[i] = refused(files[i].path, files[i].experimental, LoadStage::Isolated, result.failure);
            done[i] = 1;
          } else if (!result.any_loaded) {
            // nothing to load here: the child's records are the file's records
            out[i].records = result.records;
            for (const auto& r : out[i].records) spdlog::warn("{}", r.message());
            done[i] = 1;
          }
        }
      }
    }
  }

  // 3. load in this process what passed (or everything, InProcess)
  for (size_t i = 0; i < files.size(); ++i) {
    if (!done[i]) out[i] = LibraryCache::instance().load(files[i].path, files[i].experimental, host);
  }
  // keep the real location where a symlink leads elsewhere (a relative path alone is not news)
  for (size_t i = 0; i < files.size(); ++i) {
    const fs::path absolute = fs::absolute(files[i].path).lexically_normal();
    if (resolved[i].empty() || resolved[i] == files[i].path || resolved[i] == absolute.string()) continue;
    for (auto& r : out[i].records) r.resolved = resolved[i];
  }
  return out;
}

std::unique_ptr<Modifier> ModifierFactory::create_plugin(const TypePtr& type, const Params& params) const {
  const Params resolved = resolve_params(type->info, params);
  auto modifier = std::make_unique<PluginModifier>(type, resolved);
  apply_lifecycle_params(*modifier, resolved);
  return modifier;
}

std::unique_ptr<Modifier> ModifierFactory::create(const std::string& type, bool allow_registered,
                                                  bool allow_experimental, const Params& params) const {
  std::shared_lock lock(mutex_);
  const Registry& r = *registry_;
  if (auto it = r.registered.find(type); it != r.registered.end()) {
    if (allow_registered) {
      std::unique_ptr<Modifier> m = it->second(params);
      if (!m) throw ValueError("The provided class does not subclass the Modifier base class.");
      apply_lifecycle_params(*m, params);
      return m;
    }
    spdlog::debug("skipping registered modifier '{}': registered modifiers are not allowed", type);
  }
  if (auto it = r.experimental.find(type); it != r.experimental.end()) {
    if (allow_experimental) return create_plugin(it->second, params);
    spdlog::debug("skipping experimental modifier '{}': experimental modifiers are not allowed", type);
  }
  if (auto it = r.main.find(type); it != r.main.end()) return create_plugin(it->second, params);

  if (auto it = r.errors.find(type); it != r.errors.end()) throw LoadError(it->second.message());
  std::string message = "No modifier of type '" + type + "' found.";
  if (r.experimental.count(type) != 0) {
    message += " '" + type + "' is experimental and experimental modifiers are not allowed.";
  } else if (r.registered.count(type) != 0) {
    message += " '" + type + "' is registered and registered modifiers are not allowed.";
  } else {
    const auto close = detail::closest_names(type, known_names());
    if (!close.empty()) message += " Did you mean " + detail::quoted_list(close) + "?";
  }
  message += r.loaded ? " Searched: " + (search_dirs_.empty() ? std::string("no plugin directories")
                                                              : detail::quoted_list(search_dirs_, ", ")) + "."
                      : " The factory has not been refreshed yet.";
  throw ValueError(message);
}

std::vector<std::string> ModifierFactory::known_names() const {
  std::set<std::string> names;
  for (const auto& [n, t] : registry_->main) names.insert(n);
  for (const auto& [n, t] : registry_->experimental) names.insert(n);
  for (const auto& [n, c] : registry_->registered) names.insert(n);
  for (const auto& [n, e] : registry_->errors) {
    if (!n.empty()) names.insert(n);
  }
  return {names.begin(), names.end()};
}

void ModifierFactory::register_type(const std::string& type, Constructor constructor) {
  if (!constructor) throw ValueError("The provided class is not a type.");
  std::unique_lock lock(mutex_);
  registry_->registered[type] = std::move(constructor);
}

std::map<std::string, LoadRecord> ModifierFactory::errors() const {
  std::shared_lock lock(mutex_);
  return registry_->errors;
}

std::vector<LoadRecord> ModifierFactory::records() const {
  std::shared_lock lock(mutex_);
  return registry_->records;
}

std::vector<ModifierEntry> ModifierFactory::modifiers() const {
  std::shared_lock lock(mutex_);
  std::vector<ModifierEntry> out;
  for (const auto& [name, type] : registry_->main) out.push_back(entry_of(type, false));
  for (const auto& [name, type] : registry_->experimental) out.push_back(entry_of(type, true));
  for (const auto& [name, ctor] : registry_->registered) {
    ModifierEntry e;
    e.info.name = name;
    e.registered = true;
    out.push_back(std::move(e));
  }
  return out;
}

std::optional<ModifierEntry> ModifierFactory::find(const std::string& type) const {
  std::shared_lock lock(mutex_);
  if (registry_->registered.count(type) != 0) {
    ModifierEntry e;
    e.info.name = type;
    e.registered = true;
    return e;
  }
  if (auto it = registry_->experimental.find(type); it != registry_->experimental.end()) {
    return entry_of(it->second, true);
  }
  if (auto it = registry_->main.find(type); it != registry_->main.end()) return entry_of(it->second, false);
  return std::nullopt;
}

void apply_lifecycle_params(Modifier& m, const Params& params) {
  if (!params.is_object()) return;
  auto number = [&](const char* key) -> std::optional<double> {
    auto it = params.find(key);
    if (it == params.end() || it->is_null()) return std::nullopt;
    if (!it->is_number()) throw ValueError(m.type_name() + " parameter '" + key + "': expected float, found " + it->dump());
    return it->get<double>();
  };
  if (auto it = params.find("index"); it != params.end() && it->is_number_integer()) m.index = it->get<int64_t>();
  if (auto it = params.find("group"); it != params.end() && it->is_string()) m.group = it->get<std::string>();
  m.start = number("start");
  m.end = number("end");
  m.update = number("update");
}

}  // namespace modkit
