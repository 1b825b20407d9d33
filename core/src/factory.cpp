// ModifierFactory: the plugin directory walk, registries with first-wins names, and create precedence.
#include <modkit/core/detail/plugin_library.hpp>
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
  detail::FileLoad load(const std::string& path, bool experimental, const detail::HostFingerprint& host) {
    struct stat st {};
    const bool has_stat = ::stat(path.c_str(), &st) == 0;
    const std::string key = path + '\n' + std::to_string(st.st_dev) + ':' + std::to_string(st.st_ino) +
                            ':' + std::to_string(st.st_size) + ':' + std::to_string(st.st_mtim.tv_sec) +
                            '.' + std::to_string(st.st_mtim.tv_nsec) + ':' + (experimental ? "x" : "m") +
                            ':' + host.torch_version;
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
    for (auto& dir : split_path_list(std::getenv("MODKIT_PLUGIN_PATH"))) search_dirs_.push_back(dir);
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
  auto host = detail::HostFingerprint::current();
  host.torch_version = options_.host_torch_version;
  auto fresh = std::make_unique<Registry>();
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
    for (const auto& file : discover_plugin_files(dir.string())) {
      std::vector<LoadRecord> records;
      merge(file.experimental ? fresh->experimental : fresh->main, records,
            LibraryCache::instance().load(file.path, file.experimental, host));
      fresh->add_records(records);
    }
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
  auto host = detail::HostFingerprint::current();
  host.torch_version = options_.host_torch_version;
  std::map<std::string, TypePtr> types;
  std::vector<LoadRecord> records;
  const fs::path root(dir);
  boost::system::error_code ec;
  if (!fs::is_directory(root, ec)) {
    throw ValueError("plugin directory '" + dir + "' does not exist");
  }
  for (const auto& file : plugin_files_in_tree(dir, experimental ? "" : (root / "experimental").string())) {
    merge(types, records, LibraryCache::instance().load(file, experimental, host));
  }
  {
    std::unique_lock lock(mutex_);
    registry_->add_records(records);
  }
  std::map<std::string, ModifierEntry> out;
  for (const auto& [name, type] : types) out.emplace(name, entry_of(type, experimental));
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
